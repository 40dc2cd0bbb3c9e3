package ui

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/httperr"
	"github.com/keygate/keygate/internal/service"
)

func (u *UI) loginData(c *gin.Context) loginPage {
	return loginPage{page: u.basePage(c, "Sign in"), PasswordEnabled: !u.opts.PasswordLoginDisabled,
		Providers: u.opts.SSOProviders, Next: safeNext(c.Query("next")), Passkeys: u.svc.PasskeysAvailable(), Mail: u.svc.MailEnabled()}
}

func (u *UI) loginPage(c *gin.Context) error {
	if _, err := u.sessionOf(c); err == nil {
		c.Redirect(http.StatusSeeOther, "/ui/")
		return nil
	}
	d := u.loginData(c)
	d.Flash = u.takeFlash(c)
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.login(w, d) })
}

func (u *UI) loginSubmit(c *gin.Context) error {
	d := u.loginData(c)
	d.Next = safeNext(c.PostForm("next"))
	d.Email = strings.TrimSpace(c.PostForm("email"))
	_, err := u.opts.Web.Login(ctxOf(c), c.Writer, c.Request, service.LoginInput{Username: d.Email, Password: c.PostForm("password"),
		ClientIP: c.ClientIP()})
	if to, ok := mfaStep(err, d.Next); ok {
		c.Redirect(http.StatusSeeOther, to) // websession keeps the pending sign-in in its cookie
		return nil
	}
	if err != nil {
		status, msg, ok := signInRefusal(c, err)
		if !ok {
			return err
		}
		d.Error = msg
		return u.write(c, status, func(w io.Writer) error { return u.tmpl.login(w, d) })
	}
	c.Redirect(http.StatusSeeOther, d.Next)
	return nil
}

// mfaStep is where the browser goes when the password was right and a
// second factor is due (or must be set up).
func mfaStep(err error, next string) (string, bool) {
	e, ok := service.AsMFARequired(err)
	if !ok {
		return "", false
	}
	to := "/ui/login/mfa"
	if e.Setup {
		to = "/ui/mfa/setup"
	}
	return to + "?next=" + url.QueryEscape(safeNext(next)), true
}

// publicError returns the status and message of a failure the user can
// act on (bad input, wrong password, lockout); ok is false for internal
// failures, which become the generic error page.
func publicError(err error) (int, string, bool) {
	e, ok := apperr.As(err)
	if !ok || e.Kind == apperr.KindInternal {
		return 0, "", false
	}
	status, _, msg, _, _ := httperr.Resolve(err)
	return status, msg, true
}

// signInRefusal is publicError for a sign-in step, which also passes on
// when to try again (lockouts and slow-downs say).
func signInRefusal(c *gin.Context, err error) (int, string, bool) {
	status, msg, ok := publicError(err)
	if ok {
		if _, _, _, _, retry := httperr.Resolve(err); retry > 0 {
			c.Header("Retry-After", strconv.Itoa(retry))
		}
	}
	return status, msg, ok
}

// linkGone is the one page for unknown, used and expired links: HTTP 410,
// and nothing says whether the link ever existed.
func (u *UI) linkGone(c *gin.Context, err error) error {
	e, ok := apperr.As(err)
	if !ok || e.Kind != apperr.KindUnauthenticated {
		return err
	}
	noStore(c)
	d := messagePage{page: u.basePage(c, "Link not usable"), Status: http.StatusGone, Heading: "This link cannot be used",
		Message: e.Message}
	return u.write(c, http.StatusGone, func(w io.Writer) error { return u.tmpl.linkGone(w, d) })
}

// onboardingForm is the set-password form of an invitation.
func (u *UI) onboardingForm(c *gin.Context, id, email string) setPasswordPage {
	return setPasswordPage{page: u.basePage(c, "Welcome to Keygate"), Heading: "Set your password",
		Intro: "You were invited to Keygate. Choose a password to finish setting up your account.", Action: "/ui/onboarding",
		SecretField: "id", Secret: id, Email: email, Button: "Set password and continue"}
}

func (u *UI) onboardingPage(c *gin.Context) error {
	id := c.Query("id")
	ob, err := u.svc.PeekInvitation(ctxOf(c), id)
	if err != nil {
		return u.linkGone(c, err)
	}
	noStore(c)
	d := u.onboardingForm(c, id, emailOf(ob))
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.setPassword(w, d) })
}

func (u *UI) onboardingSubmit(c *gin.Context) error {
	id := c.PostForm("id")
	return u.claim(c, id, func(email string) setPasswordPage { return u.onboardingForm(c, id, email) },
		u.svc.PeekInvitation, func(pw string) (service.LoginResult, error) { return u.svc.ClaimInvitation(ctxOf(c), id, "", pw) })
}

func (u *UI) resetForm(c *gin.Context, token, email string) setPasswordPage {
	return setPasswordPage{page: u.basePage(c, "Reset password"), Heading: "Choose a new password",
		Intro: "Your other sessions will be signed out.", Action: "/ui/reset-password", SecretField: "token", Secret: token,
		Email: email, Button: "Set new password"}
}

func (u *UI) resetPage(c *gin.Context) error {
	token := c.Query("token")
	ob, err := u.svc.PeekReset(ctxOf(c), token)
	if err != nil {
		return u.linkGone(c, err)
	}
	noStore(c)
	d := u.resetForm(c, token, emailOf(ob))
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.setPassword(w, d) })
}

func (u *UI) resetSubmit(c *gin.Context) error {
	token := c.PostForm("token")
	return u.claim(c, token, func(email string) setPasswordPage { return u.resetForm(c, token, email) },
		u.svc.PeekReset, func(pw string) (service.LoginResult, error) { return u.svc.ResetPassword(ctxOf(c), token, pw) })
}

// claim checks the two passwords, spends the link and signs the user in.
// A password problem re-renders the form (the link stays unused); an
// unusable link gets the 410 page.
func (u *UI) claim(c *gin.Context, secret string, form func(email string) setPasswordPage,
	peek func(ctx context.Context, secret string) (service.Onboarding, error), use func(pw string) (service.LoginResult, error)) error {
	noStore(c)
	ob, err := peek(ctxOf(c), secret)
	if err != nil {
		return u.linkGone(c, err)
	}
	pw, confirm := c.PostForm("password"), c.PostForm("confirm")
	rerender := func(status int, msg string) error {
		d := form(emailOf(ob))
		d.Error = msg
		return u.write(c, status, func(w io.Writer) error { return u.tmpl.setPassword(w, d) })
	}
	if pw != confirm {
		return rerender(http.StatusBadRequest, "The two passwords do not match.")
	}
	if err := service.ValidatePassword(pw); err != nil {
		_, msg, _ := publicError(err)
		return rerender(http.StatusBadRequest, msg)
	}
	res, err := use(pw)
	if e, ok := service.AsMFARequired(err); ok {
		u.opts.Web.PendMFA(c.Writer, e)
		to, _ := mfaStep(err, "/ui/")
		return u.redirect(c, to, "Your password is set. Finish signing in with your second factor.")
	}
	if err != nil {
		if e, ok := apperr.As(err); ok && e.Kind == apperr.KindInvalid {
			return rerender(http.StatusBadRequest, e.Message)
		}
		return u.linkGone(c, err)
	}
	u.signIn(c, res)
	return u.redirect(c, "/ui/", "Welcome! Your password is set and you are signed in.")
}

func emailOf(ob service.Onboarding) string {
	if ob.User.Email != "" {
		return ob.User.Email
	}
	return ob.User.ID
}

// forgotPage offers a reset by e-mail; without e-mail set up it says to
// ask an administrator, who can make a reset link on the Users page.
func (u *UI) forgotPage(c *gin.Context) error {
	d := forgotPage{page: u.basePage(c, "Forgot password"), NoMail: !u.svc.MailEnabled()}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.forgot(w, d) })
}

// forgotSubmit answers the same whether or not the address is known.
// Without e-mail nothing could be sent, and the page does not pretend.
func (u *UI) forgotSubmit(c *gin.Context) error {
	d := forgotPage{page: u.basePage(c, "Forgot password"), Email: strings.TrimSpace(c.PostForm("email"))}
	if !u.svc.MailEnabled() {
		d.NoMail = true
		return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.forgot(w, d) })
	}
	status := http.StatusOK
	if err := u.svc.ForgotPassword(ctxOf(c), d.Email, c.ClientIP()); err != nil {
		st, msg, ok := publicError(err)
		if !ok {
			return err
		}
		status, d.Error = st, msg
	} else {
		d.Sent = true
	}
	return u.write(c, status, func(w io.Writer) error { return u.tmpl.forgot(w, d) })
}
