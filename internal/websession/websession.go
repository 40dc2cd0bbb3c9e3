// Package websession is the browser session's one home. It owns the
// cookies that carry a session (set, renew, clear), the CSRF tokens
// (issued for a session, or double-submitted before there is one), the
// cross-origin check on every state-changing browser request, signing in
// and out, and where a browser may be sent afterwards. Both faces use it:
// api for LiteLLM's /login, /v2/login and cookie-authenticated API calls,
// ui for the pages; neither keeps a copy of these rules.
//
// It speaks net/http only (Gin's context hands over its writer and
// request), so it sits outside the two faces and the import rules
// (internal/archtest) let both depend on it; it depends on the service
// layer only through the small Sessions interface.
package websession

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/store"
)

// Cookie and field names.
const (
	// SessionCookie holds the short-lived session JWT (HttpOnly).
	SessionCookie = auth.DefaultSessionCookie
	// CSRFCookie holds the session's CSRF token, readable by page script
	// on purpose (double submit); useless without the session cookie.
	CSRFCookie = auth.CSRFCookie
	// RefreshCookie holds the secret that renews an expired session JWT
	// (HttpOnly). It is bound to the session and never leaves the
	// browser–Keygate connection, unlike the JWT, which API clients and
	// other verifiers see; so a JWT that leaks dies with its 15 minutes.
	RefreshCookie = "keygate_refresh"
	// FormCookie holds the random half of the pre-session double-submit
	// token of the sign-in, onboarding and reset forms.
	FormCookie = "keygate_form"
	// MFACookie holds the token of a sign-in waiting for its second
	// factor (or for one to be set up), HttpOnly, for as long as that
	// token lives: the browser's second step sends it back without page
	// script ever reading it.
	MFACookie = "keygate_mfa"
	// DeviceCookie marks a browser that has signed in to one account
	// before (HttpOnly, DeviceTTL): that account's sign-ins from it skip
	// the per-address slow-down (OWASP's device cookies), so a flood of
	// failures from a shared address cannot hold its users back.
	DeviceCookie = "keygate_device"
	// DeviceTTL is how long a device cookie is honoured.
	DeviceTTL = 365 * 24 * time.Hour
	// CSRFHeader and CSRFField carry a token on state-changing requests.
	CSRFHeader = auth.CSRFHeader
	CSRFField  = auth.CSRFField

	formTTL = 12 * time.Hour
)

// Errors the faces render (403).
var (
	ErrCSRF        = apperr.Forbidden("Missing or invalid CSRF token for a cookie-authenticated request.")
	ErrCrossOrigin = apperr.Forbidden("Cross-site request refused: this action must come from Keygate's own pages.")
	ErrForm        = apperr.Forbidden("This form has expired or did not come from this site. Go back, reload the page and try again.")
)

// Sessions is what sign-in, renewal and sign-out need from the service
// layer (*service.Service).
type Sessions interface {
	Login(ctx context.Context, in service.LoginInput) (service.LoginResult, error)
	CompleteMFALogin(ctx context.Context, in service.MFALogin) (service.LoginResult, error)
	RenewSession(ctx context.Context, p auth.Principal) (service.LoginResult, error)
	RevokeSessionByID(ctx context.Context, userID, sid string) (store.Session, bool, error)
}

// Refresher resolves a session token whose only fault is its expiry
// (auth.SessionAuthenticator.Refreshable).
type Refresher interface {
	Refreshable(ctx context.Context, token string) (auth.Principal, error)
}

// Options configures a Manager.
type Options struct {
	// Authenticator resolves the session cookie.
	Authenticator auth.Authenticator
	// Refresher and Sessions enable renewal and sign-in/out; without
	// them (no KEYGATE_SECRET) there are no browser sessions.
	Refresher Refresher
	Sessions  Sessions
	// Key derives the CSRF, refresh and form secrets; the same on every
	// replica. Empty: a random key per process.
	Key []byte
	// Secure marks cookies Secure (TLS, or an https base URL).
	Secure bool
	// BaseURL is the configured public base: its origin is trusted by the
	// cross-origin check (a proxy may rewrite Host), and same-origin
	// logout targets are made absolute with it for the identity provider.
	BaseURL string
	// LogoutURL is where sign-out sends the browser (PROXY_LOGOUT_URL);
	// empty: the sign-in page.
	LogoutURL string
	// LogoutAllowlist names the origins (and optional path prefixes) a
	// ?redirect= after sign-out may go to.
	LogoutAllowlist []string
	// Providers end SSO sessions at the identity provider on sign-out.
	Providers []sso.Provider
	Now       func() time.Time
}

// Manager is the browser session.
type Manager struct {
	o                                   Options
	csrfKey, refreshKey, formK, deviceK []byte
	cop                                 *http.CrossOriginProtection
	allow                               []allowEntry
}

// New checks the options (an unusable allow-list entry is an error) and
// returns the manager.
func New(o Options) (*Manager, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	key := o.Key
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("websession: key: %w", err)
		}
	}
	m := &Manager{o: o, csrfKey: derive(key, "keygate-csrf-v1"), refreshKey: derive(key, "keygate-refresh-v1"),
		formK: derive(key, "keygate-ui-forms-v1"), deviceK: derive(key, "keygate-device-v1"), cop: http.NewCrossOriginProtection()}
	if o.BaseURL != "" {
		origin, err := originOf(o.BaseURL)
		if err != nil {
			return nil, fmt.Errorf("websession: base URL: %w", err)
		}
		if err := m.cop.AddTrustedOrigin(origin); err != nil {
			return nil, fmt.Errorf("websession: base URL: %w", err)
		}
	}
	for _, raw := range o.LogoutAllowlist {
		e, err := parseAllowEntry(raw)
		if err != nil {
			return nil, fmt.Errorf("websession: logout redirect allow-list entry %q: %w", raw, err)
		}
		m.allow = append(m.allow, e)
	}
	return m, nil
}

// derive makes an independent key for one purpose.
func derive(key []byte, purpose string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(purpose))
	return h.Sum(nil)
}

func (m *Manager) mac(key []byte, msg string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// ---- cookies ----

func (m *Manager) cookie(name, value string, maxAge int, httpOnly bool) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: httpOnly, Secure: m.o.Secure,
		SameSite: http.SameSiteLaxMode}
}

// Start sets the cookies of a new or renewed session: the token, its
// CSRF token and its refresh secret, all living as long as the session.
func (m *Manager) Start(w http.ResponseWriter, res service.LoginResult) {
	maxAge := int(res.Session.ExpiresAt.Sub(m.o.Now()).Seconds())
	if maxAge < 1 {
		maxAge = 1
	}
	sid := res.Session.ID
	http.SetCookie(w, m.cookie(SessionCookie, res.Token, maxAge, true))
	http.SetCookie(w, m.cookie(CSRFCookie, m.CSRFToken(sid), maxAge, false))
	http.SetCookie(w, m.cookie(RefreshCookie, sid+"."+m.mac(m.refreshKey, "keygate-refresh:"+sid), maxAge, true))
}

// Clear expires every session cookie.
func (m *Manager) Clear(w http.ResponseWriter) {
	http.SetCookie(w, m.cookie(SessionCookie, "", -1, true))
	http.SetCookie(w, m.cookie(CSRFCookie, "", -1, false))
	http.SetCookie(w, m.cookie(RefreshCookie, "", -1, true))
}

// ---- resolving and renewing ----

// Session resolves the browser's session cookie, renewing an expired
// token through the refresh cookie. Only a login session counts: an API
// key planted in the cookie is refused.
func (m *Manager) Session(ctx context.Context, w http.ResponseWriter, r *http.Request) (auth.Principal, error) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return auth.Principal{}, auth.ErrNoCredential
	}
	p, err := m.o.Authenticator.Authenticate(ctx, auth.Credential{Secret: ck.Value, FromCookie: true, Fresh: auth.ChangesState(r.Method)})
	if errors.Is(err, auth.ErrExpired) {
		p, err = m.Refresh(ctx, w, r)
	}
	if err != nil {
		return auth.Principal{}, err
	}
	if p.Method != auth.MethodSession || p.SessionID == "" {
		return auth.Principal{}, auth.ErrInvalid
	}
	return p, nil
}

// Refresh renews the expired token in the session cookie. It needs the
// refresh cookie of the same session: the expired JWT alone is never
// exchanged, so a token copied out of a log or a proxy lives no longer
// than its own expiry. The session must still be live.
func (m *Manager) Refresh(ctx context.Context, w http.ResponseWriter, r *http.Request) (auth.Principal, error) {
	if m.o.Refresher == nil || m.o.Sessions == nil {
		return auth.Principal{}, auth.ErrExpired
	}
	tok, err1 := r.Cookie(SessionCookie)
	rc, err2 := r.Cookie(RefreshCookie)
	if err1 != nil || err2 != nil {
		return auth.Principal{}, auth.ErrExpired
	}
	sid, mac, ok := strings.Cut(rc.Value, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(m.mac(m.refreshKey, "keygate-refresh:"+sid))) {
		return auth.Principal{}, auth.ErrExpired
	}
	p, err := m.o.Refresher.Refreshable(ctx, tok.Value)
	if err != nil {
		return auth.Principal{}, err
	}
	if p.SessionID != sid {
		return auth.Principal{}, auth.ErrExpired
	}
	res, err := m.o.Sessions.RenewSession(ctx, p)
	if err != nil {
		return auth.Principal{}, err
	}
	m.Start(w, res)
	p.ViaCookie = true
	return p, nil
}

// ---- CSRF and cross-origin ----

// CSRFToken is the token a session's state-changing requests echo: an
// HMAC of the session id, the same on every replica, stored nowhere.
func (m *Manager) CSRFToken(sessionID string) string {
	return m.mac(m.csrfKey, "keygate-csrf:"+sessionID)
}

// CheckOrigin refuses a state-changing request a browser sent from
// another site (Sec-Fetch-Site, else Origin against Host or the
// configured base), as Go's http.CrossOriginProtection decides.
// Requests without those headers are not from a browser and pass.
func (m *Manager) CheckOrigin(r *http.Request) error {
	if err := m.cop.Check(r); err != nil {
		return ErrCrossOrigin
	}
	return nil
}

// CheckWrite guards a state-changing request authenticated by the
// session cookie: same origin, and the session's CSRF token in the
// X-CSRF-Token header or the csrf_token form field.
func (m *Manager) CheckWrite(r *http.Request, p auth.Principal) error {
	return m.checkWrite(r, p, true)
}

// CheckWriteHeader is CheckWrite for requests whose body is not Keygate's
// to read (forwarded to the LLM proxy): the token must be in the header.
func (m *Manager) CheckWriteHeader(r *http.Request, p auth.Principal) error {
	return m.checkWrite(r, p, false)
}

func (m *Manager) checkWrite(r *http.Request, p auth.Principal, form bool) error {
	if safeMethod(r.Method) {
		return nil
	}
	if err := m.CheckOrigin(r); err != nil {
		return err
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" && form {
		got = r.PostFormValue(CSRFField)
	}
	if p.SessionID == "" || got == "" || !hmac.Equal([]byte(got), []byte(m.CSRFToken(p.SessionID))) {
		return ErrCSRF
	}
	return nil
}

func safeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// FormToken returns the double-submit token for a signed-out form,
// setting its nonce cookie first if the browser has none.
func (m *Manager) FormToken(w http.ResponseWriter, r *http.Request) (string, error) {
	ck, err := r.Cookie(FormCookie)
	if err == nil && len(ck.Value) == 43 {
		return m.mac(m.formK, "form:"+ck.Value), nil
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("websession: form nonce: %w", err)
	}
	nonce := base64.RawURLEncoding.EncodeToString(b[:])
	c := m.cookie(FormCookie, nonce, int(formTTL.Seconds()), true)
	c.Path = "/ui/"
	http.SetCookie(w, c)
	// Later reads in this request see the nonce just set.
	r.AddCookie(&http.Cookie{Name: FormCookie, Value: nonce})
	return m.mac(m.formK, "form:"+nonce), nil
}

// CheckForm guards a signed-out form post: same origin, and the posted
// token must be the HMAC of this browser's nonce cookie (so a cookie
// planted by a sibling site cannot be paired with a chosen token).
func (m *Manager) CheckForm(r *http.Request) error {
	if err := m.CheckOrigin(r); err != nil {
		return err
	}
	ck, err := r.Cookie(FormCookie)
	got := r.PostFormValue(CSRFField)
	if err != nil || ck.Value == "" || got == "" || !hmac.Equal([]byte(got), []byte(m.mac(m.formK, "form:"+ck.Value))) {
		return ErrForm
	}
	return nil
}

// Sign authenticates a value the browser keeps for the faces (the UI's
// flash message), under a key of its own purpose.
func (m *Manager) Sign(purpose, value string) string {
	return m.mac(m.formK, purpose+":"+value)
}

// ---- signing in and out ----

// Login refuses a cross-site sign-in (login CSRF: an attacker's form
// would sign the victim into the attacker's account), checks the
// password and sets the session cookies.
func (m *Manager) Login(ctx context.Context, w http.ResponseWriter, r *http.Request, in service.LoginInput) (service.LoginResult, error) {
	if err := m.CheckOrigin(r); err != nil {
		return service.LoginResult{}, err
	}
	if m.o.Sessions == nil {
		return service.LoginResult{}, apperr.Disabled("Logins are disabled: set KEYGATE_SECRET (or LITELLM_SALT_KEY).")
	}
	in.TrustedDevice = m.DeviceUser(r)
	res, err := m.o.Sessions.Login(ctx, in)
	if e, ok := service.AsMFARequired(err); ok {
		m.PendMFA(w, e)
	}
	if err != nil {
		return service.LoginResult{}, err
	}
	m.Start(w, res)
	m.setDevice(w, res.User.ID)
	if m.MFAToken(r) != "" {
		m.ClearMFA(w) // an abandoned second step
	}
	return res, nil
}

// ---- device cookies ----

// setDevice marks the browser as one that signed in to userID. The value
// is the account id, the issue time and their HMAC: nothing secret, and
// nothing a browser can make for another account.
func (m *Manager) setDevice(w http.ResponseWriter, userID string) {
	if userID == "" {
		return
	}
	payload := base64.RawURLEncoding.EncodeToString([]byte(userID)) + "." + strconv.FormatInt(m.o.Now().Unix(), 10)
	http.SetCookie(w, m.cookie(DeviceCookie, payload+"."+m.mac(m.deviceK, "keygate-device:"+payload), int(DeviceTTL.Seconds()), true))
}

// DeviceUser is the account the browser's device cookie names, or "" when
// it has none, or one that is forged, expired or issued in the future.
func (m *Manager) DeviceUser(r *http.Request) string {
	ck, err := r.Cookie(DeviceCookie)
	if err != nil || len(ck.Value) > 1024 {
		return ""
	}
	i := strings.LastIndexByte(ck.Value, '.')
	if i < 0 || !hmac.Equal([]byte(ck.Value[i+1:]), []byte(m.mac(m.deviceK, "keygate-device:"+ck.Value[:i]))) {
		return ""
	}
	id64, issued, _ := strings.Cut(ck.Value[:i], ".")
	at, err := strconv.ParseInt(issued, 10, 64)
	if err != nil {
		return ""
	}
	age := m.o.Now().Sub(time.Unix(at, 0))
	id, err := base64.RawURLEncoding.DecodeString(id64)
	if err != nil || age < -time.Minute || age > DeviceTTL {
		return ""
	}
	return string(id)
}

// PendMFA remembers a sign-in that waits for its second factor (or its
// setup) in the browser, for the second step's pages and calls.
func (m *Manager) PendMFA(w http.ResponseWriter, e *service.MFARequiredError) {
	maxAge := int(e.ExpiresAt.Sub(m.o.Now()).Seconds())
	if maxAge < 1 {
		maxAge = 1
	}
	http.SetCookie(w, m.cookie(MFACookie, e.Token, maxAge, true))
}

// ClearMFA forgets a pending sign-in.
func (m *Manager) ClearMFA(w http.ResponseWriter) {
	http.SetCookie(w, m.cookie(MFACookie, "", -1, true))
}

// MFAToken is the pending sign-in's token the browser holds, or "".
func (m *Manager) MFAToken(r *http.Request) string {
	if ck, err := r.Cookie(MFACookie); err == nil && len(ck.Value) <= 200 {
		return ck.Value
	}
	return ""
}

// CompleteMFA finishes a sign-in with its second factor (or a passwordless
// one with its passkey) and sets the session cookies. The token comes
// from the request (API clients) or the browser's cookie; a cross-site
// request is refused, as for the first step.
func (m *Manager) CompleteMFA(ctx context.Context, w http.ResponseWriter, r *http.Request, in service.MFALogin) (service.LoginResult, error) {
	if err := m.CheckOrigin(r); err != nil {
		return service.LoginResult{}, err
	}
	if m.o.Sessions == nil {
		return service.LoginResult{}, apperr.Disabled("Logins are disabled: set KEYGATE_SECRET (or LITELLM_SALT_KEY).")
	}
	if in.Token == "" {
		in.Token = m.MFAToken(r)
	}
	in.TrustedDevice = m.DeviceUser(r)
	res, err := m.o.Sessions.CompleteMFALogin(ctx, in)
	if err != nil {
		return service.LoginResult{}, err
	}
	m.Start(w, res)
	m.setDevice(w, res.User.ID)
	m.ClearMFA(w)
	return res, nil
}

// Enrolled signs the browser in after a sign-in held back by the policy
// set up its factor (the service started the session).
func (m *Manager) Enrolled(w http.ResponseWriter, res service.LoginResult) {
	m.Start(w, res)
	m.setDevice(w, res.User.ID)
	m.ClearMFA(w)
}

// LoggedIn resolves the session a sign-out would end: the cookie's token,
// expired or not, of a session that is still live.
func (m *Manager) LoggedIn(ctx context.Context, r *http.Request) (auth.Principal, bool) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" || m.o.Refresher == nil {
		return auth.Principal{}, false
	}
	p, err := m.o.Refresher.Refreshable(ctx, ck.Value)
	return p, err == nil
}

// Logout ends the browser's session. With a live session the request
// must pass CheckWrite (a link or an image cannot sign anyone out); the
// session is revoked and, for SSO, ended at the identity provider too.
// The cookies are cleared either way. It returns where to send the
// browser: the IdP's end-session URL, an allowed redirect (asked), the
// configured logout URL or the sign-in page.
func (m *Manager) Logout(ctx context.Context, w http.ResponseWriter, r *http.Request, asked string) (string, error) {
	target := m.LogoutTarget(asked)
	if p, ok := m.LoggedIn(ctx, r); ok {
		if err := m.CheckWrite(r, p); err != nil {
			return "", err
		}
		sess, _, err := m.o.Sessions.RevokeSessionByID(ctx, p.UserID, p.SessionID)
		if err != nil {
			return "", err
		}
		if u := m.endSession(sess, m.absolute(target)); u != "" {
			target = u
		}
	}
	m.Clear(w)
	return target, nil
}

// absolute makes a same-origin target absolute from the configured base,
// never from the request's Host.
func (m *Manager) absolute(target string) string {
	if strings.HasPrefix(target, "/") {
		return strings.TrimSuffix(m.o.BaseURL, "/") + target
	}
	return target
}

// endSession returns the IdP's RP-initiated logout URL for an SSO
// session, or "". The session row does not record its provider, so only
// a deployment with a single provider gets RP logout.
func (m *Manager) endSession(sess store.Session, postLogout string) string {
	if sess.LoginMethod != "sso" || sess.IDToken == "" || len(m.o.Providers) != 1 {
		return ""
	}
	return m.o.Providers[0].EndSessionURL(sess.IDToken, postLogout)
}
