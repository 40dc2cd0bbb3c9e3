package ui

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

const (
	// flashCookie carries one message across a POST-redirect-GET.
	flashCookie = "keygate_flash"
	flashTTL    = time.Minute
)

// contentSecurityPolicy allows only Keygate's own script and stylesheet:
// no inline script or style, no framing, forms post only to Keygate —
// and to where signing out may lead: browsers apply form-action to the
// redirect that answers the sign-out form too, so the configured logout
// page, allow-listed redirect origins and the identity provider's
// end-session endpoint are listed (websession.SignOutOrigins).
func contentSecurityPolicy(signOut []string) string {
	formAction := "'self'"
	for _, o := range signOut {
		formAction += " " + o
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"frame-ancestors 'none'; form-action " + formAction + "; base-uri 'none'"
}

// securityHeaders returns the middleware setting the headers of every UI
// response.
func (u *UI) securityHeaders() gin.HandlerFunc {
	csp := contentSecurityPolicy(u.opts.Web.SignOutOrigins())
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache, private")
		c.Next()
	}
}

// noStore marks a response that shows a secret (a new key, an invitation
// link): no cache may keep it, not even the browser's back/forward cache.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
}

// checkCSRF rejects a signed-in POST that is cross-site or whose token
// is not the session's (websession.CheckWrite). Every cookie-authenticated
// state change passes here; nothing runs before it.
func (u *UI) checkCSRF(c *gin.Context) {
	if err := u.opts.Web.CheckWrite(c.Request, principalOf(c)); err != nil {
		u.fail(c, err)
		return
	}
	c.Next()
}

// checkFormToken guards a signed-out form post: same origin and the
// double-submit token of this browser (websession.CheckForm).
func (u *UI) checkFormToken(c *gin.Context) {
	if err := u.opts.Web.CheckForm(c.Request); err != nil {
		u.fail(c, err)
		return
	}
	c.Next()
}

// formToken is the token a signed-out form carries.
func (u *UI) formToken(c *gin.Context) string {
	tok, err := u.opts.Web.FormToken(c.Writer, c.Request)
	if err != nil {
		u.log.Error("ui: form token", "err", err)
	}
	return tok
}

type flashValue struct {
	Kind    string `json:"k"`
	Message string `json:"m"`
	Expires int64  `json:"e"`
}

// setFlash stores a message for the next page the browser loads.
func (u *UI) setFlash(c *gin.Context, kind, msg string) {
	raw, _ := json.Marshal(flashValue{Kind: kind, Message: msg, Expires: u.now().Add(flashTTL).Unix()})
	payload := base64.RawURLEncoding.EncodeToString(raw)
	http.SetCookie(c.Writer, &http.Cookie{Name: flashCookie, Value: payload + "." + u.opts.Web.Sign("flash", payload), Path: "/ui/",
		MaxAge: int(flashTTL.Seconds()), HttpOnly: true, Secure: u.opts.SecureCookies, SameSite: http.SameSiteLaxMode})
}

// takeFlash reads and clears the flash message, if a valid one is set.
func (u *UI) takeFlash(c *gin.Context) *flash {
	ck, err := c.Cookie(flashCookie)
	if err != nil || ck == "" {
		return nil
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: flashCookie, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true,
		Secure: u.opts.SecureCookies, SameSite: http.SameSiteLaxMode})
	payload, sig, ok := strings.Cut(ck, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(u.opts.Web.Sign("flash", payload))) {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil
	}
	var v flashValue
	if json.Unmarshal(raw, &v) != nil || u.now().Unix() > v.Expires || v.Message == "" {
		return nil
	}
	kind := "ok"
	if v.Kind == "error" {
		kind = "error"
	}
	return &flash{Kind: kind, Message: v.Message}
}

// redirect answers a successful POST with 303 and an optional flash.
func (u *UI) redirect(c *gin.Context, to, msg string) error {
	if msg != "" {
		u.setFlash(c, "ok", msg)
	}
	c.Redirect(http.StatusSeeOther, to)
	return nil
}

// redirectError sends a failed POST back to the page it came from with
// the public reason as a flash; internal failures get the error page.
func (u *UI) redirectError(c *gin.Context, to string, err error) error {
	_, msg, ok := publicError(err)
	if !ok {
		return err
	}
	u.setFlash(c, "error", msg)
	c.Redirect(http.StatusSeeOther, to)
	return nil
}
