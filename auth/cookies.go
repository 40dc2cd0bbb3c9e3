package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"time"
)

// Cookie names shared by the API and the UI.
const (
	// DefaultSessionCookie holds the session JWT (HttpOnly).
	DefaultSessionCookie = "keygate_session"
	// CSRFCookie holds the session's CSRF token, readable by page script
	// on purpose (double submit); it is useless without the session cookie.
	CSRFCookie = "keygate_csrf"
	// CSRFHeader and CSRFField carry the token on state-changing requests
	// (header for fetch/XHR, form field for HTML forms).
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

// CSRFToken is the token a cookie session must echo on state-changing
// requests: an HMAC of the session id under a key derived from the operator
// secret, so every replica computes the same token and nothing is stored.
func CSRFToken(key []byte, sessionID string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("keygate-csrf:" + sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CSRFValid compares a presented token with the session's, in constant time.
func CSRFValid(key []byte, sessionID, presented string) bool {
	if len(key) == 0 || sessionID == "" || presented == "" {
		return false
	}
	return hmac.Equal([]byte(presented), []byte(CSRFToken(key, sessionID)))
}

// SessionCookies returns the session and CSRF cookies for a new or
// refreshed session: Path=/, SameSite=Lax, HttpOnly for the token, Secure
// when served over TLS.
func SessionCookies(name, token, csrf string, expires time.Time, secure bool) []*http.Cookie {
	maxAge := int(time.Until(expires).Seconds())
	if maxAge < 1 {
		maxAge = 1
	}
	cs := []*http.Cookie{{Name: name, Value: token, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}}
	if csrf != "" {
		cs = append(cs, &http.Cookie{Name: CSRFCookie, Value: csrf, Path: "/", MaxAge: maxAge, Secure: secure, SameSite: http.SameSiteLaxMode})
	}
	return cs
}

// ClearCookies expires the session and CSRF cookies.
func ClearCookies(name string, secure bool) []*http.Cookie {
	return []*http.Cookie{
		{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode},
		{Name: CSRFCookie, Value: "", Path: "/", MaxAge: -1, Secure: secure, SameSite: http.SameSiteLaxMode},
	}
}
