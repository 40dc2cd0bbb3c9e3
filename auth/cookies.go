package auth

// Cookie and header names of the browser session. The cookies themselves
// (set, renewed, cleared) and the CSRF tokens are internal/websession's.
const (
	// CookiePrefix starts the name of every cookie Keygate sets; none is
	// ever the upstream's business, so forwarding drops them all.
	CookiePrefix = "keygate_"
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
