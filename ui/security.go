package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
)

const (
	csrfFieldName = auth.CSRFField
	// formCookie holds the random half of the pre-session double-submit
	// token (login, onboarding, reset and forgot forms have no session
	// yet to bind a token to).
	formCookie = "keygate_form"
	// flashCookie carries one message across a POST-redirect-GET.
	flashCookie = "keygate_flash"
	flashTTL    = time.Minute
	formTTL     = 12 * time.Hour
)

// contentSecurityPolicy allows only Keygate's own script and stylesheet:
// no inline script or style, no framing, forms post only to Keygate.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

// securityHeaders is set on every UI response.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache, private")
	c.Next()
}

// noStore marks a response that shows a secret (a new key, an invitation
// link): no cache may keep it, not even the browser's back/forward cache.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
}

func subKey(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

func (u *UI) sign(purpose, value string) string {
	m := hmac.New(sha256.New, u.formKey)
	m.Write([]byte(purpose + ":" + value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// errForm is the answer to a POST whose CSRF token is missing or wrong.
var errForm = apperr.Forbidden("This form has expired or did not come from this site. Go back, reload the page and try again.")

// checkCSRF rejects a signed-in POST whose token is not the session's.
// Every cookie-authenticated state change passes here; nothing runs
// before it.
func (u *UI) checkCSRF(c *gin.Context) {
	if c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead {
		c.Next()
		return
	}
	got := c.GetHeader(auth.CSRFHeader)
	if got == "" {
		got = c.PostForm(csrfFieldName)
	}
	if !auth.CSRFValid(u.opts.CSRFKey, principalOf(c).SessionID, got) {
		u.fail(c, errForm)
		return
	}
	c.Next()
}

// formCookie gives a signed-out form page its double-submit nonce.
func (u *UI) formCookie(c *gin.Context) {
	if _, ok := u.formNonce(c); !ok {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			u.fail(c, err)
			return
		}
		nonce := base64.RawURLEncoding.EncodeToString(b[:])
		http.SetCookie(c.Writer, &http.Cookie{Name: formCookie, Value: nonce, Path: "/ui/", MaxAge: int(formTTL.Seconds()),
			HttpOnly: true, Secure: u.opts.SecureCookies, SameSite: http.SameSiteLaxMode})
		c.Set(formCookie, nonce)
	}
	c.Next()
}

func (u *UI) formNonce(c *gin.Context) (string, bool) {
	if v, ok := c.Get(formCookie); ok {
		s, _ := v.(string)
		return s, s != ""
	}
	ck, err := c.Cookie(formCookie)
	if err != nil || len(ck) != 43 {
		return "", false
	}
	return ck, true
}

// formToken is the form field matching the browser's nonce cookie: an HMAC
// of it, so a cookie planted by a sibling site cannot be paired with a
// token of the attacker's choosing.
func (u *UI) formToken(c *gin.Context) string {
	nonce, ok := u.formNonce(c)
	if !ok {
		return ""
	}
	return u.sign("form", nonce)
}

// checkFormToken compares the posted token with the nonce cookie in
// constant time.
func (u *UI) checkFormToken(c *gin.Context) {
	ck, err := c.Cookie(formCookie)
	got := c.PostForm(csrfFieldName)
	if err != nil || ck == "" || got == "" || !hmac.Equal([]byte(got), []byte(u.sign("form", ck))) {
		u.fail(c, errForm)
		return
	}
	c.Next()
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
	http.SetCookie(c.Writer, &http.Cookie{Name: flashCookie, Value: payload + "." + u.sign("flash", payload), Path: "/ui/",
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
	if !ok || !hmac.Equal([]byte(sig), []byte(u.sign("flash", payload))) {
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
