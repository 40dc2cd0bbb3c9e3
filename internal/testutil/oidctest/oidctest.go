// Package oidctest runs a small but real OpenID provider inside a test
// process, on 127.0.0.1, so relying-party code can be tested against real
// signatures, real PKCE and single-use codes without a network IdP.
//
// It serves discovery, JWKS, /authorize (auto-login as the configured user),
// /token, /userinfo and an end-session endpoint. ID tokens are RS256-signed
// with a key generated per provider. Knobs on Misbehaviour make it issue the
// broken tokens a hostile or misconfigured IdP could send, one at a time, so
// negative tests stay honest: everything else about the response is correct.
//
// It is written here rather than taken from zitadel/oidc's example OP
// because that example keeps clients in a global registry, puts no e-mail in
// the ID token and offers no control over claims or misbehaviour.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// BackchannelLogoutEvent is the event name a back-channel logout token
// carries in its "events" claim.
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// Lifetimes of what the provider issues.
const (
	codeLifetime    = time.Minute
	idTokenLifetime = 5 * time.Minute
)

// Options configures a Provider. Zero values get test defaults.
type Options struct {
	// ClientID and ClientSecret of the one registered client
	// (defaults "keygate" / "keygate-secret").
	ClientID     string
	ClientSecret string
	// RedirectURIs the client may use; matched exactly, as OIDC requires.
	RedirectURIs []string
	// PostLogoutRedirectURIs the end-session endpoint may redirect to.
	PostLogoutRedirectURIs []string
	// AllowNoPKCE accepts authorization requests without a code
	// challenge. By default PKCE is required.
	AllowNoPKCE bool
	// NoEndSession leaves end_session_endpoint out of discovery (as
	// Google does).
	NoEndSession bool
	// Addr is the loopback address to listen on (e.g. "127.0.0.1:4671");
	// empty picks a free port. A standalone provider (bench/oidcop) names
	// it so the relying party can be configured before it starts.
	Addr string
}

// TB is the part of testing.TB the provider uses: a test passes its
// *testing.T or *testing.B, a standalone program (bench/oidcop) its own
// implementation. Fatalf must not return.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// User is who /authorize logs in as.
type User struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	// Groups, when non-nil, is sent as the "groups" claim.
	Groups []string
	// Extra claims are added to the ID token and userinfo last, so they
	// can override any standard claim (e.g. "email_verified": "true").
	Extra map[string]any
	// EmailOnlyInUserinfo leaves email and email_verified out of the ID
	// token, as some IdPs do; userinfo still has them.
	EmailOnlyInUserinfo bool
}

// Misbehaviour makes the provider issue broken responses. The zero value
// is an honest provider. It applies to logins started after it is set.
type Misbehaviour struct {
	// Issuer replaces the ID token's iss.
	Issuer string
	// Audience replaces the ID token's aud.
	Audience []string
	// AZP sets the ID token's azp.
	AZP string
	// ExpiresIn, when non-zero, sets exp to now+ExpiresIn (negative:
	// already expired).
	ExpiresIn time.Duration
	// Nonce replaces the nonce the client sent; OmitNonce drops it.
	Nonce     string
	OmitNonce bool
	// Unsigned issues the ID token with alg "none".
	Unsigned bool
	// ForeignKey signs the ID token with a key not in the JWKS.
	ForeignKey bool
	// WrongAtHash puts an at_hash that does not match the access token.
	WrongAtHash bool
	// UserinfoSubject makes /userinfo answer for another subject.
	UserinfoSubject string
	// AuthorizeError makes /authorize redirect back with this error code.
	AuthorizeError string
}

// EndSessionCall records one request to the end-session endpoint.
type EndSessionCall struct {
	IDTokenHint           string
	PostLogoutRedirectURI string
	State                 string
	ClientID              string
	// Subject and SID come from the hint when it is a valid ID token of
	// this provider (expiry ignored, as RP-initiated logout allows).
	Subject   string
	SID       string
	HintValid bool
	// Redirected is true when the provider redirected to
	// PostLogoutRedirectURI.
	Redirected bool
}

// Login records one successful /authorize.
type Login struct {
	Subject string
	SID     string
	Nonce   string
}

type authCode struct {
	redirectURI string
	challenge   string
	nonce       string
	hasNonce    bool
	sid         string
	user        User
	mis         Misbehaviour
	expires     time.Time
}

type accessToken struct {
	user    User
	mis     Misbehaviour
	revoked bool
}

// Provider is a running OpenID provider. Its methods are safe for
// concurrent use.
type Provider struct {
	t       TB
	opts    Options
	srv     *httptest.Server
	key     *rsa.PrivateKey
	kid     string
	foreign *rsa.PrivateKey // made on first use: most tests never need it

	mu       sync.Mutex
	user     User
	mis      Misbehaviour
	codes    map[string]*authCode
	used     map[string]string // spent code → access token it produced
	tokens   map[string]*accessToken
	endCalls []EndSessionCall
	logins   []Login
}

// New starts a provider on 127.0.0.1 (or opts.Addr) and stops it when the
// test ends.
func New(t TB, opts Options) *Provider {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID = "keygate"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "keygate-secret"
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("oidctest: generating key: %v", err)
	}
	p := &Provider{
		t: t, opts: opts, key: key, kid: randomString(8),
		user:   User{Subject: "alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice"},
		codes:  map[string]*authCode{},
		used:   map[string]string{},
		tokens: map[string]*accessToken{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("/userinfo", p.userinfo)
	mux.HandleFunc("/end_session", p.endSession)
	if opts.Addr == "" {
		p.srv = httptest.NewServer(mux) // binds 127.0.0.1:0
	} else {
		ln, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			t.Fatalf("oidctest: listen: %v", err)
		}
		p.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
		p.srv.Start()
	}
	t.Cleanup(p.srv.Close)
	return p
}

// Issuer is the provider's issuer URL (no trailing slash).
func (p *Provider) Issuer() string { return p.srv.URL }

// ClientID of the registered client.
func (p *Provider) ClientID() string { return p.opts.ClientID }

// ClientSecret of the registered client.
func (p *Provider) ClientSecret() string { return p.opts.ClientSecret }

// SetUser sets who the next logins authenticate as.
func (p *Provider) SetUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user = u
}

// SetMisbehaviour sets how the next logins misbehave; the zero value
// restores honesty.
func (p *Provider) SetMisbehaviour(m Misbehaviour) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mis = m
}

// EndSessionCalls returns the end-session requests seen so far.
func (p *Provider) EndSessionCalls() []EndSessionCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.endCalls)
}

// Logins returns the successful authorizations so far, oldest first.
func (p *Provider) Logins() []Login {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.logins)
}

// LogoutClaims returns the claims of a valid back-channel logout token for
// sub and/or sid, for tests that alter one claim and Sign the rest.
func (p *Provider) LogoutClaims(sub, sid string) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss":    p.Issuer(),
		"aud":    p.opts.ClientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    randomString(16),
		"events": map[string]any{BackchannelLogoutEvent: map[string]any{}},
	}
	if sub != "" {
		c["sub"] = sub
	}
	if sid != "" {
		c["sid"] = sid
	}
	return c
}

// LogoutToken mints a valid, signed back-channel logout token.
func (p *Provider) LogoutToken(sub, sid string) string {
	return p.Sign(p.LogoutClaims(sub, sid), "logout+jwt")
}

// Sign signs claims with the provider's published key. typ, when not
// empty, is put in the JOSE header.
func (p *Provider) Sign(claims map[string]any, typ string) string {
	return p.sign(claims, typ, Misbehaviour{})
}

// SignForeign signs claims with a key the provider does not publish.
func (p *Provider) SignForeign(claims map[string]any, typ string) string {
	return p.sign(claims, typ, Misbehaviour{ForeignKey: true})
}

// SignNone encodes claims as an unsigned (alg "none") JWT.
func (p *Provider) SignNone(claims map[string]any, typ string) string {
	return p.sign(claims, typ, Misbehaviour{Unsigned: true})
}

func (p *Provider) sign(claims map[string]any, typ string, m Misbehaviour) string {
	method, key := jwt.SigningMethod(jwt.SigningMethodRS256), any(p.key)
	switch {
	case m.Unsigned:
		method, key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
	case m.ForeignKey:
		key = p.foreignKey()
	}
	tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	if !m.Unsigned {
		tok.Header["kid"] = p.kid
	}
	if typ != "" {
		tok.Header["typ"] = typ
	} else {
		delete(tok.Header, "typ")
	}
	s, err := tok.SignedString(key)
	if err != nil {
		p.t.Errorf("oidctest: signing: %v", err)
	}
	return s
}

func (p *Provider) foreignKey() *rsa.PrivateKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.foreign == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			p.t.Errorf("oidctest: generating key: %v", err)
			return p.key
		}
		p.foreign = k
	}
	return p.foreign
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	iss := p.Issuer()
	doc := map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/authorize",
		"token_endpoint":                        iss + "/token",
		"userinfo_endpoint":                     iss + "/userinfo",
		"jwks_uri":                              iss + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"grant_types_supported":                 []string{"authorization_code"},
		"claims_supported":                      []string{"sub", "email", "email_verified", "name", "groups", "sid"},
		"backchannel_logout_supported":          true,
		"backchannel_logout_session_supported":  true,
	}
	if !p.opts.NoEndSession {
		doc["end_session_endpoint"] = iss + "/end_session"
	}
	writeJSON(w, http.StatusOK, doc)
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	pub := p.key.PublicKey
	e := big64(pub.E)
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": p.kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(e),
	}}})
}

// big64 encodes a small positive int big-endian without leading zeros.
func big64(v int) []byte {
	var b []byte
	for ; v > 0; v >>= 8 {
		b = append([]byte{byte(v)}, b...)
	}
	return b
}

func (p *Provider) registeredRedirect(uri string) bool {
	return slices.Contains(p.opts.RedirectURIs, uri)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// atHash is the OIDC at_hash of an RS256-signed token: the left half of
// the SHA-256 of the access token.
func atHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// Login drives /authorize like a browser that is already signed in at the
// IdP: it requests authURL without following the redirect and returns the
// query the provider sent back to the redirect URI (code and state, or
// error). It fails the test if the provider does not redirect to a
// registered redirect URI.
func (p *Provider) Login(t TB, authURL string) url.Values {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("oidctest: authorize: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("oidctest: authorize answered %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("oidctest: bad Location: %v", err)
	}
	q := loc.Query()
	loc.RawQuery = ""
	if !p.registeredRedirect(loc.String()) {
		t.Fatalf("oidctest: redirected to unregistered %q", loc.String())
	}
	return q
}

func (p *Provider) String() string { return fmt.Sprintf("oidctest.Provider(%s)", p.Issuer()) }

// hasScope reports whether a space-separated scope list contains s.
func hasScope(scopes, s string) bool { return slices.Contains(strings.Fields(scopes), s) }
