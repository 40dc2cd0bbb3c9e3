package api_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/internal/testutil/oidctest"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

// faultDB is a database the test can make refuse inserts into one table,
// with the database's own error (a trigger), to see what a compound
// operation leaves behind when its second write fails.
type faultDB struct {
	name    string
	dialect string
	dsn     string
	store   store.Store
}

func faultDBs(t *testing.T) []*faultDB {
	path := dbtest.SQLitePath(t)
	url := dbtest.PostgresURL(t)
	return []*faultDB{
		{name: "sqlite", dialect: "sqlite", dsn: path, store: openStore(t, gormstore.Options{SQLitePath: path})},
		{name: "postgres", dialect: "postgres", dsn: url, store: openStore(t, gormstore.Options{DatabaseURL: url})},
	}
}

// failInserts makes every insert into table fail until the returned func
// is called.
func (f *faultDB) failInserts(t *testing.T, table string) (restore func()) {
	t.Helper()
	ctx := context.Background()
	switch f.dialect {
	case "sqlite":
		db, err := sql.Open("sqlite", f.dsn) // the driver gormstore registers
		require.NoError(t, err)
		defer db.Close()
		_, err = db.ExecContext(ctx, "CREATE TRIGGER kg_fault BEFORE INSERT ON "+table+" BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
		require.NoError(t, err)
		return func() {
			db, err := sql.Open("sqlite", f.dsn)
			require.NoError(t, err)
			defer db.Close()
			_, err = db.ExecContext(ctx, "DROP TRIGGER kg_fault")
			require.NoError(t, err)
		}
	default:
		conn, err := pgx.Connect(ctx, f.dsn)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `CREATE FUNCTION kg_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$`)
		require.NoError(t, err)
		_, err = conn.Exec(ctx, "CREATE TRIGGER kg_fault BEFORE INSERT ON "+table+" FOR EACH ROW EXECUTE FUNCTION kg_fault()")
		require.NoError(t, err)
		return func() {
			conn, err := pgx.Connect(ctx, f.dsn)
			require.NoError(t, err)
			defer conn.Close(ctx)
			_, err = conn.Exec(ctx, "DROP TRIGGER kg_fault ON "+table+"; DROP FUNCTION kg_fault()")
			require.NoError(t, err)
		}
	}
}

// TestUserNewIsOneTransaction: /user/new writes the user, its first key
// and (when asked) its invitation together. When the key or invitation
// cannot be written, no user is left behind, and the retry succeeds
// instead of answering 409.
func TestUserNewIsOneTransaction(t *testing.T) {
	t.Parallel()
	for _, db := range faultDBs(t) {
		t.Run(db.name, func(t *testing.T) {
			e := newEnv(t, db.store)
			for _, c := range []struct {
				table string
				body  map[string]any
			}{
				{"api_keys", map[string]any{"user_id": "ann", "user_role": "internal_user"}},
				{"invitations", map[string]any{"user_id": "ben", "user_email": "ben@example.com", "send_invite_email": true}},
			} {
				restore := db.failInserts(t, c.table)
				r := e.do(http.MethodPost, "/user/new", masterKey, c.body)
				require.GreaterOrEqual(t, r.Code, 500, "%s: %s", c.table, r.Body.String())
				id := c.body["user_id"].(string)
				_, err := db.store.GetUser(t.Context(), id)
				require.ErrorIs(t, err, store.ErrNotFound, "%s refused: the user must not exist without it", c.table)
				keys, _, err := db.store.ListKeys(t.Context(), store.KeyFilter{UserID: id})
				require.NoError(t, err)
				require.Empty(t, keys)
				restore()

				r = e.do(http.MethodPost, "/user/new", masterKey, c.body)
				require.Equal(t, http.StatusOK, r.Code, "the retry succeeds: %s", r.Body.String())
				out := r.JSON(t)
				require.NotEmpty(t, out["key"])
				if c.table == "invitations" {
					require.NotEmpty(t, out["invitation_link"])
				}
			}
		})
	}
}

// TestSSOLoginIsOneTransaction: an SSO login that provisions or links a
// user and the session it starts are one transaction. When the session
// cannot be written, no user is provisioned, no account is linked and the
// invitation that would have linked it is not consumed.
func TestSSOLoginIsOneTransaction(t *testing.T) {
	t.Parallel()
	db := faultDBs(t)[0]
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	op := oidctest.New(t, oidctest.Options{RedirectURIs: []string{srv.URL + "/sso/callback"}})
	p, err := sso.NewGeneric(context.Background(), sso.GenericOptions{Name: "test", DisplayName: "Test IdP", ClientID: op.ClientID(),
		ClientSecret: op.ClientSecret(), Issuer: op.Issuer(), RedirectURL: srv.URL + "/sso/callback"})
	require.NoError(t, err)
	te := newEnvWith(t, db.store, func(o *app.Options) {
		o.Issuer, o.SSOProviders, o.SSOPolicy = srv.URL, []sso.Provider{p}, service.SSOPolicy{}
	})
	srv.Config.Handler = te.h
	e := &ssoEnv{testEnv: te, op: op, base: srv.URL}

	r := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "dana", "user_email": "dana@corp.example",
		"user_role": "internal_user", "auto_create_key": false})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	link := e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": "dana"}).JSON(t)["invitation_link"].(string)
	users := userCount(t, db.store)

	restore := db.failInserts(t, "sessions")
	e.op.SetUser(oidctest.User{Subject: "sub-new", Email: "new@corp.example", EmailVerified: true})
	require.NotEqual(t, http.StatusSeeOther, e.ssoLogin(t, browser(t), nil).StatusCode)
	require.Equal(t, users, userCount(t, db.store), "no user provisioned without a session")
	e.op.SetUser(oidctest.User{Subject: "sub-dana", Email: "dana@corp.example", EmailVerified: true})
	require.NotEqual(t, http.StatusSeeOther, e.ssoLogin(t, browser(t), nil).StatusCode)
	u, err := db.store.GetUser(t.Context(), "dana")
	require.NoError(t, err)
	require.Empty(t, u.SSOSubject, "not linked without a session")
	r = e.do(http.MethodGet, "/onboarding/get_token?invite_link="+invitationID(t, link), "", nil)
	require.Equal(t, http.StatusOK, r.Code, "the invitation is not consumed: %s", r.Body.String())
	restore()

	b := browser(t)
	require.Equal(t, http.StatusSeeOther, e.ssoLogin(t, b, nil).StatusCode)
	r = e.do(http.MethodGet, "/user/info", sessionOf(t, b, e.base), nil)
	require.Equal(t, "dana", r.JSON(t)["user_id"])
}
