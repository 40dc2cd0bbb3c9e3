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

// clockSkew is how far in the future an iat may lie.
const clockSkew = 5 * time.Minute

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
// §2.6: signature, iss, aud, iat, exp, jti, the logout event, sub or sid,
// no nonce, and typ logout+jwt when a typ is given.
func (g *Generic) VerifyLogoutToken(ctx context.Context, raw string) (LogoutClaims, error) {
	if err := checkLogoutTyp(raw); err != nil {
		return LogoutClaims{}, fmt.Errorf("%w: %s: logout token: %w", ErrInvalidToken, g.name, err)
	}
	lt, err := g.verifier.VerifyLogout(oidc.ClientContext(ctx, g.client), raw)
	if err != nil {
		return LogoutClaims{}, fmt.Errorf("%w: %s: logout token: %w", ErrInvalidToken, g.name, err)
	}
	var c struct {
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := lt.Claims(&c); err != nil {
		return LogoutClaims{}, fmt.Errorf("%w: %s: logout token: %w", ErrInvalidToken, g.name, err)
	}
	// The event's value must be a JSON object (go-oidc only checks it is
	// present).
	if ev := bytes.TrimSpace(c.Events["http://schemas.openid.net/event/backchannel-logout"]); len(ev) == 0 || ev[0] != '{' {
		return LogoutClaims{}, fmt.Errorf("%w: %s: logout token: logout event is not an object", ErrInvalidToken, g.name)
	}
	if lt.IssuedAt.IsZero() || lt.IssuedAt.After(time.Now().Add(clockSkew)) {
		return LogoutClaims{}, fmt.Errorf("%w: %s: logout token: missing or future iat", ErrInvalidToken, g.name)
	}
	all, err := decodeClaims(lt.Claims)
	if err != nil {
		return LogoutClaims{}, fmt.Errorf("%w: %s: logout token: %w", ErrInvalidToken, g.name, err)
	}
	if err := g.checkIssuer(lt.Issuer, all); err != nil {
		return LogoutClaims{}, err
	}
	return LogoutClaims{Issuer: lt.Issuer, Subject: lt.Subject, SID: lt.SessionID, JTI: lt.TokenID, Expires: lt.Expiry}, nil
}

// checkLogoutTyp rejects a logout token whose JOSE typ is set to anything
// but logout+jwt (§2.4 recommends that typ, so an ID token or access
// token cannot be passed off as one).
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
		if t != "logout+jwt" && t != "application/logout+jwt" {
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
