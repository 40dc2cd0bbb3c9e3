package sso

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/oidctest"
)

const msCallback = "http://127.0.0.1:9/sso/callback"

// TestMultiTenantIssuer runs the Microsoft "common" tenant logic against
// the test OP: its discovery names a {tenantid} template, and each token's
// iss must be the template filled with the token's own tid.
func TestMultiTenantIssuer(t *testing.T) {
	t.Parallel()
	op := oidctest.New(t, oidctest.Options{RedirectURIs: []string{msCallback}})
	template := op.Issuer() + "/{tenantid}/v2.0"
	g, err := newGeneric(context.Background(), GenericOptions{
		Name: "microsoft", ClientID: op.ClientID(), ClientSecret: op.ClientSecret(),
		Issuer: op.Issuer(), RedirectURL: msCallback,
	}, genericExtras{issuerTemplate: template, extraGroupsClaims: []string{"roles"}})
	require.NoError(t, err)

	login := func(iss string, extra map[string]any) (Identity, error) {
		op.SetMisbehaviour(oidctest.Misbehaviour{Issuer: iss})
		op.SetUser(oidctest.User{Subject: "s", Email: "s@contoso.com", Groups: []string{"g1"}, Extra: extra})
		fs, err := NewFlow(rand.Reader, g.Name(), "", time.Now())
		require.NoError(t, err)
		q := op.Login(t, g.LoginURL(fs.State, fs.Nonce, fs.Verifier))
		return g.Exchange(context.Background(), q.Get("code"), fs.Verifier, fs.Nonce)
	}
	tenantIss := op.Issuer() + "/tid-1/v2.0"

	id, err := login(tenantIss, map[string]any{"tid": "tid-1", "roles": []any{"App.Admin"}})
	require.NoError(t, err)
	require.Equal(t, tenantIss, id.Issuer)
	require.Equal(t, []string{"g1", "App.Admin"}, id.Groups)

	for name, c := range map[string]struct {
		iss   string
		extra map[string]any
	}{
		"tid of another tenant": {tenantIss, map[string]any{"tid": "tid-2"}},
		"no tid":                {tenantIss, nil},
		"template itself":       {template, map[string]any{"tid": "{tenantid}"}},
		"bare issuer":           {op.Issuer(), map[string]any{"tid": "tid-1"}},
		"tid with a path":       {op.Issuer() + "/a/b/v2.0", map[string]any{"tid": "a/b"}},
	} {
		_, err := login(c.iss, c.extra)
		require.ErrorIs(t, err, ErrInvalidToken, name)
	}

	lc := op.LogoutClaims("s", "")
	lc["iss"], lc["tid"] = tenantIss, "tid-1"
	got, err := g.VerifyLogoutToken(context.Background(), op.Sign(lc, "logout+jwt"))
	require.NoError(t, err)
	require.Equal(t, tenantIss, got.Issuer)
	lc["tid"] = "tid-2"
	_, err = g.VerifyLogoutToken(context.Background(), op.Sign(lc, "logout+jwt"))
	require.ErrorIs(t, err, ErrInvalidToken)
}

func TestMicrosoftPresetConfig(t *testing.T) {
	t.Parallel()
	require.Equal(t, "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0", MicrosoftIssuer("contoso.onmicrosoft.com"))
	require.True(t, multiTenant("common"))
	require.True(t, multiTenant("Organizations"))
	require.False(t, multiTenant("8eaef023-2b34-4da1-9baa-8bc8c9d6a490"))
	for _, tenant := range []string{"", "a/b", "x?y"} {
		_, err := NewMicrosoft(context.Background(), "id", "secret", tenant, msCallback)
		require.ErrorIs(t, err, ErrConfig)
	}
}

func TestClaimHelpers(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"a", "b"}, listClaim([]any{"a", " ", "b", true, nil}))
	require.Equal(t, []string{"x"}, listClaim("x"))
	require.Nil(t, listClaim(nil))
	require.Nil(t, listClaim(map[string]any{"a": 1}))
	require.True(t, boolClaim(" True "))
	require.False(t, boolClaim("1"))
	require.NoError(t, checkLogoutTyp("eyJhbGciOiJSUzI1NiJ9.e30.sig"))
	require.NoError(t, checkLogoutTyp("eyJ0eXAiOiJKV1QifQ.e30.sig"))   // {"typ":"JWT"}
	require.Error(t, checkLogoutTyp("eyJ0eXAiOiJhdCtqd3QifQ.e30.sig")) // {"typ":"at+jwt"}
	require.Error(t, checkLogoutTyp("nodots"))
	require.Error(t, checkLogoutTyp("!!.e30.sig"))
}
