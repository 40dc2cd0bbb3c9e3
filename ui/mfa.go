package ui

import (
	"context"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/store"
)

// MFAOps is what the second-factor pages need.
type MFAOps interface {
	PendingSignIn(ctx context.Context, token string) (service.MFAPending, error)
	PasskeysAvailable() bool
	MyMFA(ctx context.Context, p auth.Principal) (service.MFAStatus, error)
	SetupTOTP(ctx context.Context, p auth.Principal, token string) (service.TOTPSetup, error)
	ConfirmTOTP(ctx context.Context, p auth.Principal, token, code string, proof service.OwnerProof) (service.MFAEnabled, error)
	DisableTOTP(ctx context.Context, p auth.Principal, proof service.MFAProof) error
	DeletePasskey(ctx context.Context, p auth.Principal, id string, proof service.MFAProof) error
	RegenerateRecoveryCodes(ctx context.Context, p auth.Principal, proof service.MFAProof) ([]string, error)
	ResetMFA(ctx context.Context, p auth.Principal, userID string) error
	MFASummaries(ctx context.Context, p auth.Principal, userIDs []string) (map[string]store.MFASummary, error)
}

// ---- pages ----

// mfaStepPage is the second step of a sign-in.
type mfaStepPage struct {
	page
	Email    string
	Next     string
	TOTP     bool
	Passkey  bool
	Error    string
	Recovery bool // the recovery-code form is open
}

// totpSetupPage shows a new TOTP secret and asks for its first code.
type totpSetupPage struct {
	page
	Heading string
	Intro   string
	Action  string // where the code is posted
	QR      template.URL
	Secret  string
	URI     string
	Error   string
	Passkey bool   // offer a passkey instead (enrollment)
	Restart string // where "start over" posts; "" hides it
	// Proof names the field a signed-in user proves it is them with:
	// "password" (no second factor yet) or "current_code" (a recovery
	// code, when they have passkeys); "" asks for none (enrollment).
	Proof string
}

// recoveryCodesPage shows recovery codes once.
type recoveryCodesPage struct {
	page
	Heading  string
	Codes    []string
	Joined   string
	Continue string
}

// securityPage is the signed-in user's second factors.
type securityPage struct {
	page
	Status   service.MFAStatus
	Passkeys []passkeyRow
	Error    string
}

type passkeyRow struct {
	ID       string
	Name     string
	Created  string
	LastUsed string
}

// ---- the second step of a sign-in ----

// pendingOf reads the browser's pending sign-in, or sends it back to the
// sign-in page (its cookie is gone, spent or expired).
func (u *UI) pendingOf(c *gin.Context) (string, service.MFAPending, bool) {
	tok := u.opts.Web.MFAToken(c.Request)
	if tok == "" {
		c.Redirect(http.StatusSeeOther, "/ui/login")
		return "", service.MFAPending{}, false
	}
	p, err := u.svc.PendingSignIn(ctxOf(c), tok)
	if err != nil {
		u.opts.Web.ClearMFA(c.Writer)
		u.setFlash(c, "error", "That sign-in has expired; sign in again.")
		c.Redirect(http.StatusSeeOther, "/ui/login")
		return "", service.MFAPending{}, false
	}
	return tok, p, true
}

func (u *UI) mfaStepData(c *gin.Context, p service.MFAPending, next string) mfaStepPage {
	return mfaStepPage{page: u.basePage(c, "Two-factor authentication"), Email: p.Email, Next: safeNext(next),
		TOTP: slices.Contains(p.Methods, service.MFAMethodTOTP), Passkey: slices.Contains(p.Methods, service.MFAMethodWebAuthn)}
}

// mfaStepPage (GET /ui/login/mfa) asks for the second factor.
func (u *UI) mfaStepPage(c *gin.Context) error {
	_, p, ok := u.pendingOf(c)
	if !ok {
		return nil
	}
	if p.Setup {
		c.Redirect(http.StatusSeeOther, "/ui/mfa/setup?next="+url.QueryEscape(safeNext(c.Query("next"))))
		return nil
	}
	noStore(c)
	d := u.mfaStepData(c, p, c.Query("next"))
	d.Flash = u.takeFlash(c)
	d.Recovery = c.Query("recovery") == "1" || !d.TOTP
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.mfaStep(w, d) })
}

// mfaStepSubmit (POST /ui/login/mfa) finishes the sign-in with a code.
func (u *UI) mfaStepSubmit(c *gin.Context) error {
	_, p, ok := u.pendingOf(c)
	if !ok {
		return nil
	}
	next := safeNext(c.PostForm("next"))
	_, err := u.opts.Web.CompleteMFA(ctxOf(c), c.Writer, c.Request, service.MFALogin{Code: c.PostForm("code"), ClientIP: c.ClientIP()})
	if err != nil {
		status, msg, ok := signInRefusal(c, err)
		if !ok {
			return err
		}
		noStore(c)
		d := u.mfaStepData(c, p, next)
		d.Error, d.Recovery = msg, c.PostForm("kind") == "recovery" || !d.TOTP
		return u.write(c, status, func(w io.Writer) error { return u.tmpl.mfaStep(w, d) })
	}
	c.Redirect(http.StatusSeeOther, next)
	return nil
}

// ---- setting a factor up for a sign-in the policy held back ----

func (u *UI) enrollSetup(c *gin.Context, tok string, p service.MFAPending, next, errMsg string) error {
	setup, err := u.svc.SetupTOTP(ctxOf(c), auth.Principal{}, tok)
	if err != nil {
		return u.enrollFailed(c, err)
	}
	noStore(c)
	d := totpSetupPage{page: u.basePage(c, "Set up two-factor authentication"), Heading: "Set up two-factor authentication",
		Intro:  "Your role requires a second factor. Scan the code with an authenticator app (or add a passkey), then enter the app's code to finish signing in.",
		Action: "/ui/mfa/setup?next=" + url.QueryEscape(next), QR: qrURL(setup), Secret: setup.Secret, URI: setup.OTPAuthURI, Error: errMsg,
		Passkey: slices.Contains(p.Methods, service.MFAMethodWebAuthn)}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.totpSetup(w, d) })
}

// enrollFailed sends a browser whose held-back sign-in is gone back to
// the sign-in page.
func (u *UI) enrollFailed(c *gin.Context, err error) error {
	if e, ok := apperr.As(err); ok && e.Kind == apperr.KindUnauthenticated {
		u.opts.Web.ClearMFA(c.Writer)
		u.setFlash(c, "error", e.Message)
		c.Redirect(http.StatusSeeOther, "/ui/login")
		return nil
	}
	return err
}

// enrollPage (GET /ui/mfa/setup): a new TOTP secret for the sign-in.
func (u *UI) enrollPage(c *gin.Context) error {
	tok, p, ok := u.pendingOf(c)
	if !ok {
		return nil
	}
	if !p.Setup {
		c.Redirect(http.StatusSeeOther, "/ui/login/mfa")
		return nil
	}
	return u.enrollSetup(c, tok, p, safeNext(c.Query("next")), "")
}

// enrollSubmit (POST /ui/mfa/setup): the app's first code turns TOTP on,
// signs the browser in and shows the recovery codes once.
func (u *UI) enrollSubmit(c *gin.Context) error {
	tok, p, ok := u.pendingOf(c)
	if !ok {
		return nil
	}
	next := safeNext(c.Query("next"))
	out, err := u.svc.ConfirmTOTP(ctxOf(c), auth.Principal{}, tok, c.PostForm("code"), service.OwnerProof{})
	if err != nil {
		if e, ok := apperr.As(err); ok && e.Kind == apperr.KindInvalid {
			return u.enrollSetup(c, tok, p, next, e.Message+" A new code is shown below: scan it again.")
		}
		return u.enrollFailed(c, err)
	}
	if out.Login != nil {
		u.opts.Web.Enrolled(c.Writer, *out.Login)
	}
	return u.showCodes(c, "Two-factor authentication is on", out.RecoveryCodes, next)
}

func (u *UI) showCodes(c *gin.Context, heading string, codes []string, cont string) error {
	noStore(c)
	d := recoveryCodesPage{page: u.basePage(c, "Recovery codes"), Heading: heading, Codes: codes, Joined: strings.Join(codes, "\n"),
		Continue: cont}
	if p, err := u.sessionOf(c); err == nil && d.Viewer == nil {
		d.page = u.signedIn(p, "Recovery codes", "")
	}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.recoveryCodes(w, d) })
}

func qrURL(s service.TOTPSetup) template.URL {
	// A data: URL of our own PNG (the CSP allows img-src data:).
	return template.URL("data:image/png;base64," + s.QRPNGBase64) //nolint:gosec // base64 of a PNG Keygate made
}

// ---- the signed-in user's second factors ----

func (u *UI) securityData(c *gin.Context) (securityPage, error) {
	p := principalOf(c)
	st, err := u.svc.MyMFA(ctxOf(c), p)
	if err != nil {
		return securityPage{}, err
	}
	d := securityPage{page: u.pageFor(c, "Two-factor authentication", ""), Status: st}
	for _, k := range st.Passkeys {
		row := passkeyRow{ID: k.ID, Name: k.Name, Created: when(k.CreatedAt), LastUsed: "never"}
		if k.LastUsedAt != nil {
			row.LastUsed = when(*k.LastUsedAt)
		}
		d.Passkeys = append(d.Passkeys, row)
	}
	return d, nil
}

// security (GET /ui/account/security) lists the user's second factors.
func (u *UI) security(c *gin.Context) error {
	d, err := u.securityData(c)
	if err != nil {
		return err
	}
	noStore(c)
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.security(w, d) })
}

// securityError re-renders the page with the public reason of a refused
// change.
func (u *UI) securityError(c *gin.Context, err error) error {
	status, msg, ok := publicError(err)
	if !ok {
		return err
	}
	d, derr := u.securityData(c)
	if derr != nil {
		return errors.Join(err, derr)
	}
	d.Error = msg
	return u.write(c, status, func(w io.Writer) error { return u.tmpl.security(w, d) })
}

// totpSetup (POST /ui/account/security/totp) shows a new secret.
func (u *UI) totpSetup(c *gin.Context) error {
	return u.accountSetup(c, "")
}

func (u *UI) accountSetup(c *gin.Context, errMsg string) error {
	setup, err := u.svc.SetupTOTP(ctxOf(c), principalOf(c), "")
	if err != nil {
		return u.securityError(c, err)
	}
	st, err := u.svc.MyMFA(ctxOf(c), principalOf(c))
	if err != nil {
		return u.securityError(c, err)
	}
	proof := "password"
	if st.Enabled {
		proof = "current_code"
	}
	noStore(c)
	d := totpSetupPage{page: u.pageFor(c, "Set up an authenticator app", ""), Heading: "Set up an authenticator app",
		Intro:  "Scan the code with an authenticator app (or type the key), then enter the code it shows.",
		Action: "/ui/account/security/totp/confirm", QR: qrURL(setup), Secret: setup.Secret, URI: setup.OTPAuthURI, Error: errMsg,
		Proof: proof}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.totpSetup(w, d) })
}

// totpConfirm (POST /ui/account/security/totp/confirm) turns TOTP on.
func (u *UI) totpConfirm(c *gin.Context) error {
	proof := service.OwnerProof{MFAProof: service.MFAProof{Code: c.PostForm("current_code")}, Password: c.PostForm("password")}
	out, err := u.svc.ConfirmTOTP(ctxOf(c), principalOf(c), "", c.PostForm("code"), proof)
	if err != nil {
		if e, ok := apperr.As(err); ok && e.Kind == apperr.KindInvalid {
			return u.accountSetup(c, e.Message+" A new code is shown below: scan it again.")
		}
		return u.securityError(c, err)
	}
	return u.showCodes(c, "The authenticator app is on", out.RecoveryCodes, "/ui/account/security")
}

func proofOf(c *gin.Context) service.MFAProof {
	return service.MFAProof{Code: c.PostForm("code")}
}

// totpDisable (POST /ui/account/security/totp/disable).
func (u *UI) totpDisable(c *gin.Context) error {
	if err := u.svc.DisableTOTP(ctxOf(c), principalOf(c), proofOf(c)); err != nil {
		return u.securityError(c, err)
	}
	return u.redirect(c, "/ui/account/security", "The authenticator app is turned off.")
}

// passkeyDelete (POST /ui/account/security/passkeys/delete).
func (u *UI) passkeyDelete(c *gin.Context) error {
	if err := u.svc.DeletePasskey(ctxOf(c), principalOf(c), c.PostForm("id"), proofOf(c)); err != nil {
		return u.securityError(c, err)
	}
	return u.redirect(c, "/ui/account/security", "The passkey was removed.")
}

// recoveryCodes (POST /ui/account/security/recovery-codes) makes new
// codes and shows them once.
func (u *UI) recoveryCodes(c *gin.Context) error {
	codes, err := u.svc.RegenerateRecoveryCodes(ctxOf(c), principalOf(c), proofOf(c))
	if err != nil {
		return u.securityError(c, err)
	}
	return u.showCodes(c, "New recovery codes", codes, "/ui/account/security")
}

// resetUserMFA (POST /ui/users/mfa-reset, admins) removes a user's second
// factors and ends their sessions.
func (u *UI) resetUserMFA(c *gin.Context) error {
	id := c.PostForm("user_id")
	if ok, err := u.confirmed(c, mfaResetStep(id, c.PostForm("label")), "/ui/users"); !ok {
		return err
	}
	if err := u.svc.ResetMFA(ctxOf(c), principalOf(c), id); err != nil {
		return u.redirectError(c, "/ui/users", err)
	}
	return u.redirect(c, "/ui/users", "Two-factor authentication was reset; the user's sessions ended.")
}
