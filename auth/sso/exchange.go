package sso

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	// clockSkew is how far in the future an iat may lie.
	clockSkew = 5 * time.Minute
	// maxLogoutAge is how old a logout token without exp may be.
	maxLogoutAge = 5 * time.Minute
	// backchannelLogoutEvent is the event a logout token must carry.
	backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"
)

// Exchange implements Provider: it redeems the code with the PKCE
// verifier, verifies the ID token (signature, issuer, audience, expiry,
// nonce, azp, at_hash) and builds the Identity, asking userinfo only when
// the ID token lacks the e-mail.
func (g *Generic) Exchange(ctx context.Context, code, pkceVerifier, nonce string) (Identity, error) {
	switch {
	case code == "":
		return Identity{}, fmt.Errorf("%w: %s: no code", ErrExchange, g.name)
	case pkceVerifier == "" || nonce == "":
		// Every flow this package starts has both; without them the
		// response cannot be bound to the browser that asked.
		return Identity{}, fmt.Errorf("%w: %s: flow has no PKCE verifier or nonce", ErrInvalidState, g.name)
	}
	ctx = oidc.ClientContext(ctx, g.client)
	tok, err := g.oauth.Exchange(ctx, code, oauth2.VerifierOption(pkceVerifier))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %s: %s", ErrExchange, g.name, exchangeReason(err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: %s: token response has no id_token", ErrInvalidToken, g.name)
	}
	idt, err := g.verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %s: %w", ErrInvalidToken, g.name, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Identity{}, fmt.Errorf("%w: %s: nonce mismatch", ErrInvalidToken, g.name)
	}
	claims, err := decodeClaims(idt.Claims)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %s: %w", ErrInvalidToken, g.name, err)
	}
	if err := g.checkIssuer(idt.Issuer, claims); err != nil {
		return Identity{}, err
	}
	if err := g.checkIDTokenExtras(idt, claims, tok.AccessToken); err != nil {
		return Identity{}, err
	}

	// The e-mail and its verified flag are taken from the same document,
	// so a verified flag never vouches for an address it was not about.
	emailSrc := claims
	merged := maps.Clone(claims)
	if _, has := claims[g.emailAttr]; !has && g.provider.UserInfoEndpoint() != "" {
		ui, err := g.userinfo(ctx, tok, idt.Subject)
		if err != nil {
			return Identity{}, err
		}
		emailSrc = ui
		for k, v := range ui {
			if _, ok := merged[k]; !ok {
				merged[k] = v
			}
		}
	}

	id := Identity{
		Provider: g.name, Issuer: idt.Issuer, Subject: stringClaim(claims, g.userIDAttr),
		Name: g.nameOf(merged), Claims: merged, IDToken: raw, SID: stringClaim(claims, "sid"),
	}
	if id.Subject == "" {
		return Identity{}, fmt.Errorf("%w: %s: no %q claim for the user id", ErrInvalidToken, g.name, g.userIDAttr)
	}
	id.Email = strings.TrimSpace(stringClaim(emailSrc, g.emailAttr))
	id.EmailVerified = id.Email != "" && boolClaim(emailSrc["email_verified"]) &&
		strings.EqualFold(strings.TrimSpace(stringClaim(emailSrc, "email")), id.Email)
	for _, c := range g.groupsClaims {
		for _, v := range listClaim(merged[c]) {
			if !slices.Contains(id.Groups, v) {
				id.Groups = append(id.Groups, v)
			}
		}
	}
	return id, nil
}

// exchangeReason describes a failed exchange by the OAuth error code when
// there is one, so the error text carries nothing the IdP echoed back.
func exchangeReason(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return "token endpoint: " + re.ErrorCode
		}
		if re.Response != nil {
			return "token endpoint: " + re.Response.Status
		}
	}
	return err.Error()
}

// checkIDTokenExtras checks what go-oidc's verifier leaves to the caller:
// iat, azp (OIDC Core §3.1.3.7 items 4–5) and at_hash (§3.1.3.8).
func (g *Generic) checkIDTokenExtras(idt *oidc.IDToken, claims map[string]any, accessToken string) error {
	if idt.IssuedAt.IsZero() || idt.IssuedAt.After(time.Now().Add(clockSkew)) {
		return fmt.Errorf("%w: %s: missing or future iat", ErrInvalidToken, g.name)
	}
	azp, hasAZP := claims["azp"]
	if hasAZP && azp != g.clientID {
		return fmt.Errorf("%w: %s: azp is not this client", ErrInvalidToken, g.name)
	}
	if len(idt.Audience) > 1 && !hasAZP {
		return fmt.Errorf("%w: %s: several audiences and no azp", ErrInvalidToken, g.name)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidToken, g.name, err)
		}
	}
	return nil
}

// userinfo fetches the userinfo claims and checks they are about sub
// (OIDC Core §5.3.2: otherwise they must not be used).
func (g *Generic) userinfo(ctx context.Context, tok *oauth2.Token, sub string) (map[string]any, error) {
	ui, err := g.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: userinfo: %w", ErrExchange, g.name, err)
	}
	if ui.Subject != sub {
		return nil, fmt.Errorf("%w: %s: userinfo sub differs from the ID token's", ErrInvalidToken, g.name)
	}
	c, err := decodeClaims(ui.Claims)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: userinfo: %w", ErrInvalidToken, g.name, err)
	}
	return c, nil
}

func (g *Generic) nameOf(c map[string]any) string {
	if n := strings.TrimSpace(stringClaim(c, g.nameAttr)); n != "" || g.nameAttr != "name" {
		return n
	}
	return strings.TrimSpace(stringClaim(c, "given_name") + " " + stringClaim(c, "family_name"))
}

// VerifyLogoutToken implements Provider per OIDC Back-Channel Logout 1.0
// §2.6: signature, iss, aud, iat, jti, the logout event, sub or sid, no
// nonce, and a typ (when given) of logout+jwt or JWT. exp is checked when
// present; providers that follow the earlier drafts (Ory Hydra v2.3.0)
// send none, and then iat must be at most maxLogoutAge old. go-oidc's
// VerifyLogout insists on exp, so the claims are checked here.
func (g *Generic) VerifyLogoutToken(ctx context.Context, raw string) (LogoutClaims, error) {
	fail := func(err error) (LogoutClaims, error) {
		return LogoutClaims{}, fmt.Errorf("%w: %s: logout token: %w", ErrInvalidToken, g.name, err)
	}
	if err := checkLogoutTyp(raw); err != nil {
		return fail(err)
	}
	tok, err := g.logoutVerifier.Verify(oidc.ClientContext(ctx, g.client), raw)
	if err != nil {
		return fail(err)
	}
	var c struct {
		Events map[string]json.RawMessage `json:"events"`
		JTI    string                     `json:"jti"`
		SID    string                     `json:"sid"`
	}
	if err := tok.Claims(&c); err != nil {
		return fail(err)
	}
	all, err := decodeClaims(tok.Claims)
	if err != nil {
		return fail(err)
	}
	now := time.Now()
	// The event's value must be a JSON object.
	ev := bytes.TrimSpace(c.Events[backchannelLogoutEvent])
	switch _, hasNonce := all["nonce"]; {
	case len(ev) == 0 || ev[0] != '{':
		return fail(errors.New("no " + backchannelLogoutEvent + " event object"))
	case hasNonce:
		// §2.4: forbidden, so an ID token can never pass as a logout token.
		return fail(errors.New("nonce present"))
	case c.JTI == "":
		return fail(errors.New("no jti"))
	case tok.Subject == "" && c.SID == "":
		return fail(errors.New("neither sub nor sid"))
	case tok.IssuedAt.IsZero() || tok.IssuedAt.After(now.Add(clockSkew)):
		return fail(errors.New("missing or future iat"))
	case !tok.Expiry.IsZero() && !now.Before(tok.Expiry):
		return fail(errors.New("expired"))
	case tok.Expiry.IsZero() && now.Sub(tok.IssuedAt) > maxLogoutAge:
		return fail(errors.New("no exp and iat too old"))
	}
	if err := g.checkIssuer(tok.Issuer, all); err != nil {
		return LogoutClaims{}, err
	}
	exp := tok.Expiry
	if exp.IsZero() {
		exp = tok.IssuedAt.Add(maxLogoutAge)
	}
	return LogoutClaims{Issuer: tok.Issuer, Subject: tok.Subject, SID: c.SID, JTI: c.JTI, Expires: exp}, nil
}

// checkLogoutTyp rejects a logout token explicitly typed as something
// else (an access token "at+jwt", say). §2.4 recommends typ logout+jwt;
// the generic "JWT" is accepted too because certified providers send it
// (Ory Hydra v2.3.0 does), and the required events claim and forbidden
// nonce already tell a logout token from an ID token.
func checkLogoutTyp(raw string) error {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return errors.New("malformed JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return errors.New("malformed JWT header")
	}
	var h struct {
		Typ *string `json:"typ"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return errors.New("malformed JWT header")
	}
	if h.Typ != nil {
		t := strings.ToLower(*h.Typ)
		if t != "logout+jwt" && t != "application/logout+jwt" && t != "jwt" {
			return fmt.Errorf("typ %q is not logout+jwt", *h.Typ)
		}
	}
	return nil
}

// decodeClaims decodes a claims document keeping numbers exact.
func decodeClaims(into func(any) error) (map[string]any, error) {
	var raw json.RawMessage
	if err := into(&raw); err != nil {
		return nil, fmt.Errorf("decoding claims: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decoding claims: %w", err)
	}
	return m, nil
}

// stringClaim returns a string (or numeric) claim as a string, else "".
func stringClaim(c map[string]any, name string) string {
	switch v := c[name].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// boolClaim reads email_verified-style claims, which some IdPs (AWS
// Cognito among them) send as the string "true".
func boolClaim(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return strings.EqualFold(strings.TrimSpace(b), "true")
	}
	return false
}

// listClaim reads a claim that is a string or a list of strings/numbers.
func listClaim(v any) []string {
	var out []string
	add := func(x any) {
		switch s := x.(type) {
		case string:
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		case json.Number:
			out = append(out, s.String())
		}
	}
	if l, ok := v.([]any); ok {
		for _, x := range l {
			add(x)
		}
		return out
	}
	add(v)
	return out
}
