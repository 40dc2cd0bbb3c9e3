package oidctest

import (
	"crypto/subtle"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// authorize implements the authorization endpoint for response_type=code.
// Errors that cannot be trusted to a redirect (unknown client, unregistered
// redirect URI) are shown as a page, as RFC 6749 §4.1.2.1 demands.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != p.opts.ClientID {
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	}
	redirectURI := q.Get("redirect_uri")
	if !p.registeredRedirect(redirectURI) {
		http.Error(w, "redirect_uri not registered", http.StatusBadRequest)
		return
	}
	back := func(params url.Values) {
		u, _ := url.Parse(redirectURI) // registered, so it parses
		v := u.Query()
		for k, vs := range params {
			v[k] = vs
		}
		if st := q.Get("state"); st != "" {
			v.Set("state", st)
		}
		v.Set("iss", p.Issuer()) // RFC 9207
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	fail := func(code, desc string) { back(url.Values{"error": {code}, "error_description": {desc}}) }

	p.mu.Lock()
	user, mis := p.user, p.mis
	p.mu.Unlock()

	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "only code is supported")
		return
	case !hasScope(q.Get("scope"), "openid"):
		fail("invalid_scope", "openid scope required")
		return
	case mis.AuthorizeError != "":
		fail(mis.AuthorizeError, "misbehaviour")
		return
	}
	challenge := q.Get("code_challenge")
	switch {
	case challenge == "" && !p.opts.AllowNoPKCE:
		fail("invalid_request", "code_challenge required")
		return
	case challenge != "" && q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case challenge != "" && len(challenge) != 43:
		fail("invalid_request", "malformed code_challenge")
		return
	}

	code := randomString(32)
	ac := &authCode{
		redirectURI: redirectURI, challenge: challenge, sid: randomString(12),
		user: user, mis: mis, expires: time.Now().Add(codeLifetime),
	}
	ac.nonce, ac.hasNonce = q.Get("nonce"), q.Has("nonce")
	p.mu.Lock()
	p.codes[code] = ac
	p.logins = append(p.logins, Login{Subject: user.Subject, SID: ac.sid, Nonce: ac.nonce})
	p.mu.Unlock()
	back(url.Values{"code": {code}})
}

// clientAuthenticated checks client_secret_basic or client_secret_post.
func (p *Provider) clientAuthenticated(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if ok {
		// RFC 6749 §2.3.1: the basic credentials are form-url-encoded.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == p.opts.ClientID &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(p.opts.ClientSecret)) == 1
}

// token implements the token endpoint for the authorization_code grant:
// client authentication, single-use codes (a replay also revokes the
// tokens the code produced, per RFC 6749 §4.1.2), redirect_uri binding and
// the PKCE S256 check.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	if !p.clientAuthenticated(r) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code")
		return
	}
	code := r.PostForm.Get("code")

	p.mu.Lock()
	ac, ok := p.codes[code]
	delete(p.codes, code)
	if !ok {
		if at, spent := p.used[code]; spent {
			if tok := p.tokens[at]; tok != nil {
				tok.revoked = true
			}
		}
		p.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown, expired or already used code")
		return
	}
	at := randomString(32)
	p.used[code] = at
	p.mu.Unlock()

	verifier := r.PostForm.Get("code_verifier")
	switch {
	case time.Now().After(ac.expires):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code expired")
		return
	case r.PostForm.Get("redirect_uri") != ac.redirectURI:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri mismatch")
		return
	case ac.challenge == "" && verifier != "":
		// RFC 9700 §2.1.1: a verifier without a challenge is a downgrade.
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier without code_challenge")
		return
	case ac.challenge != "" && (len(verifier) < 43 || len(verifier) > 128 ||
		subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(ac.challenge)) != 1):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
		return
	}

	p.mu.Lock()
	p.tokens[at] = &accessToken{user: ac.user, mis: ac.mis}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at,
		"token_type":   "Bearer",
		"expires_in":   300,
		"scope":        "openid email profile",
		"id_token":     p.idToken(ac, at),
	})
}

// userClaims are the claims describing u, shared by ID token and userinfo.
func userClaims(u User, withEmail bool) map[string]any {
	c := map[string]any{"sub": u.Subject}
	if withEmail && u.Email != "" {
		c["email"] = u.Email
		c["email_verified"] = u.EmailVerified
	}
	if u.Name != "" {
		c["name"] = u.Name
	}
	if u.Groups != nil {
		c["groups"] = u.Groups
	}
	maps.Copy(c, u.Extra)
	return c
}

func (p *Provider) idToken(ac *authCode, accessToken string) string {
	now := time.Now()
	m := ac.mis
	c := userClaims(ac.user, !ac.user.EmailOnlyInUserinfo)
	c["iss"] = p.Issuer()
	c["aud"] = p.opts.ClientID
	c["iat"] = now.Unix()
	c["auth_time"] = now.Unix()
	c["exp"] = now.Add(idTokenLifetime).Unix()
	c["sid"] = ac.sid
	c["at_hash"] = atHash(accessToken)
	if ac.hasNonce {
		c["nonce"] = ac.nonce
	}
	if m.Issuer != "" {
		c["iss"] = m.Issuer
	}
	if m.Audience != nil {
		c["aud"] = m.Audience
	}
	if m.AZP != "" {
		c["azp"] = m.AZP
	}
	if m.ExpiresIn != 0 {
		c["exp"] = now.Add(m.ExpiresIn).Unix()
	}
	if m.Nonce != "" {
		c["nonce"] = m.Nonce
	}
	if m.OmitNonce {
		delete(c, "nonce")
	}
	if m.WrongAtHash {
		c["at_hash"] = atHash(accessToken + "x")
	}
	return p.sign(c, "JWT", m)
}

func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	tok := p.tokens[at]
	p.mu.Unlock()
	if !ok || tok == nil || tok.revoked {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	c := userClaims(tok.user, true)
	if tok.mis.UserinfoSubject != "" {
		c["sub"] = tok.mis.UserinfoSubject
	}
	writeJSON(w, http.StatusOK, c)
}

// endSession implements RP-initiated logout: it records the call and
// redirects to post_logout_redirect_uri only when that URI is registered
// and the request is bound to the client (a valid id_token_hint or
// client_id), as the spec requires to avoid an open redirect.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	call := EndSessionCall{
		IDTokenHint:           r.Form.Get("id_token_hint"),
		PostLogoutRedirectURI: r.Form.Get("post_logout_redirect_uri"),
		State:                 r.Form.Get("state"),
		ClientID:              r.Form.Get("client_id"),
	}
	if call.IDTokenHint != "" {
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(call.IDTokenHint, claims, func(*jwt.Token) (any, error) { return &p.key.PublicKey, nil },
			jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
		aud, _ := claims.GetAudience()
		if err == nil && claims["iss"] == p.Issuer() && slices.Contains(aud, p.opts.ClientID) {
			call.HintValid = true
			call.Subject, _ = claims["sub"].(string)
			call.SID, _ = claims["sid"].(string)
		}
	}
	bound := call.HintValid || call.ClientID == p.opts.ClientID
	call.Redirected = bound && slices.Contains(p.opts.PostLogoutRedirectURIs, call.PostLogoutRedirectURI)
	p.mu.Lock()
	p.endCalls = append(p.endCalls, call)
	p.mu.Unlock()

	if !call.Redirected {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("You have been signed out.\n"))
		return
	}
	u, _ := url.Parse(call.PostLogoutRedirectURI)
	if call.State != "" {
		v := u.Query()
		v.Set("state", call.State)
		u.RawQuery = v.Encode()
	}
	http.Redirect(w, r, u.String(), http.StatusFound)
}
