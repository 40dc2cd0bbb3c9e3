package litellmimport_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/litellmimport"
	lt "github.com/keygate/keygate/internal/litellmimport/litellmtest"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// target opens an empty Keygate store on PostgreSQL.
func target(t *testing.T) *gormstore.Store {
	t.Helper()
	st, err := gormstore.Open(context.Background(), gormstore.Options{DatabaseURL: dbtest.PostgresURL(t), Logger: quiet()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func importOnce(t *testing.T, from string, st store.Store, dry bool) (litellmimport.Report, string) {
	t.Helper()
	rep, err := litellmimport.Import(t.Context(), from, st, litellmimport.Options{DryRun: dry})
	require.NoError(t, err)
	var out bytes.Buffer
	rep.Print(&out)
	s := out.String()
	for _, secret := range []string{lt.KeyAlice, lt.KeyBobExpired, lt.KeyDashboard, lt.KeyOrphan, lt.KeyBlocked, lt.AlicePasswordHash} {
		require.NotContains(t, s, secret, "the report must not show keys or password hashes")
	}
	return rep, s
}

func counts(created, updated, unchanged, skipped int) litellmimport.Counts {
	return litellmimport.Counts{Created: created, Updated: updated, Unchanged: unchanged, Skipped: skipped}
}

func requireEmpty(t *testing.T, st store.Store) {
	t.Helper()
	ctx := t.Context()
	_, n, err := st.ListUsers(ctx, store.UserFilter{})
	require.NoError(t, err)
	require.Zero(t, n, "users")
	_, n, err = st.ListTeams(ctx, store.TeamFilter{})
	require.NoError(t, err)
	require.Zero(t, n, "teams")
	_, n, err = st.ListKeys(ctx, store.KeyFilter{})
	require.NoError(t, err)
	require.Zero(t, n, "keys")
	_, n, err = st.ListAudit(ctx, store.AuditFilter{})
	require.NoError(t, err)
	require.Zero(t, n, "audit events")
}

// verify calls /auth/verify of a real Keygate (internal/app) on st.
func verify(t *testing.T, h http.Handler, key, model string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/auth/verify", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if model != "" {
		req.Header.Set("X-Keygate-Model", model)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestImportLiteLLM(t *testing.T) {
	from := lt.NewSource(t)
	st := target(t)
	ctx := t.Context()

	// A dry run reports everything and writes nothing.
	dry, out := importOnce(t, from, st, true)
	require.True(t, dry.DryRun)
	require.Equal(t, counts(4, 0, 0, 0), dry.Users)
	require.Equal(t, counts(2, 0, 0, 0), dry.Teams)
	require.Equal(t, counts(3, 0, 0, 1), dry.Memberships, "alice+bob in team-a, carol in team-b; ghost skipped")
	require.Equal(t, counts(5, 0, 0, 1), dry.Keys, "the dashboard session key is skipped")
	require.Contains(t, out, "DRY RUN")
	require.Contains(t, out, "create user alice")
	require.Contains(t, out, "14 records would change.")
	requireEmpty(t, st)

	first, out := importOnce(t, from, st, false)
	require.Equal(t, dry.Changes, first.Changes, "the dry run predicts the real run")
	require.Equal(t, 14, first.Changed())
	require.Contains(t, out, "Passwords were not imported")
	for _, w := range []string{
		`user carol: role "app_owner" is not one of Keygate's; imported as internal_user_viewer`,
		"user carol: e-mail is also user alice's; imported without an e-mail",
		"team team-a: a member without a known user_id or e-mail was skipped",
		"owner zed does not exist; imported without an owner",
		"team team-gone does not exist; imported without a team",
		`alias "alice-prod" is taken by key sk-...bcdE; imported without an alias`,
	} {
		require.Contains(t, out, w)
	}

	// Running it again changes nothing.
	second, out := importOnce(t, from, st, false)
	require.Zero(t, second.Changed(), out)
	require.Equal(t, counts(0, 0, 4, 0), second.Users)
	require.Equal(t, counts(0, 0, 2, 0), second.Teams)
	require.Equal(t, counts(0, 0, 3, 1), second.Memberships)
	require.Equal(t, counts(0, 0, 5, 1), second.Keys)
	require.Contains(t, out, "0 records changed.")
	events, n, err := st.ListAudit(ctx, store.AuditFilter{Action: "import.litellm"})
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "one audit event for the run that changed something")
	require.Equal(t, "import-litellm", events[0].ActorID)

	// What was written.
	alice, err := st.GetUser(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, "internal_user", alice.Role)
	require.Equal(t, "alice@example.com", alice.Email)
	require.Empty(t, alice.PasswordHash, "LiteLLM password hashes are not imported")
	require.Equal(t, 12.5, alice.Spend)
	require.Equal(t, 100.0, *alice.MaxBudget)
	require.Equal(t, []string{"gpt-4o", "gpt-4o-mini"}, alice.Models)
	require.Equal(t, map[string]any{"dept": "ml", "level": 3.0}, alice.Metadata)
	require.Equal(t, "2024-05-01T12:34:56.789Z", alice.CreatedAt.Format("2006-01-02T15:04:05.999Z07:00"))
	require.EqualValues(t, 1000, *alice.TPMLimit)
	carol, err := st.GetUser(ctx, "carol")
	require.NoError(t, err)
	require.Equal(t, "internal_user_viewer", carol.Role)
	require.Empty(t, carol.Email)
	bob, err := st.GetUser(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, "proxy_admin", bob.Role)

	m, err := st.GetMembership(ctx, "team-a", "alice")
	require.NoError(t, err)
	require.Equal(t, "admin", m.Role)
	require.Equal(t, 7.5, m.Spend)
	require.Equal(t, 50.0, *m.MaxBudgetInTeam)
	m, err = st.GetMembership(ctx, "team-a", "bob")
	require.NoError(t, err)
	require.Equal(t, "user", m.Role, "a member named only by e-mail is resolved")
	_, err = st.GetMembership(ctx, "team-b", "carol")
	require.NoError(t, err, "users' teams[] makes memberships too")

	k, err := st.GetKey(ctx, lt.Hash(lt.KeyAlice))
	require.NoError(t, err)
	require.Equal(t, "alice-prod", k.Alias)
	require.Equal(t, 3.25, k.Spend)
	require.Equal(t, 20.0, *k.MaxBudget)
	require.Equal(t, "team-a", k.TeamID)
	orphan, err := st.GetKey(ctx, lt.Hash(lt.KeyOrphan))
	require.NoError(t, err)
	require.Empty(t, orphan.UserID)
	require.Empty(t, orphan.Models, "all-team-models means no key-level list")
	require.Equal(t, "llm_api", orphan.KeyType)
	_, err = st.GetKey(ctx, lt.Hash(lt.KeyDashboard))
	require.ErrorIs(t, err, store.ErrNotFound)

	// Imported keys keep authenticating through a real Keygate.
	a, err := app.New(ctx, app.Options{Store: st, Logger: quiet(), MasterKeyHash: sha256.Sum256([]byte("sk-master-import-test"))})
	require.NoError(t, err)
	h := a.Handler()
	r := verify(t, h, lt.KeyAlice, "gpt-4o")
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	require.Equal(t, "alice", r.Header().Get("X-Keygate-User-Id"))
	require.Equal(t, "internal_user", r.Header().Get("X-Keygate-User-Role"))
	require.Equal(t, "team-a", r.Header().Get("X-Keygate-Team-Id"))
	require.Equal(t, lt.Hash(lt.KeyAlice), r.Header().Get("X-Keygate-Key-Id"))
	require.Equal(t, http.StatusForbidden, verify(t, h, lt.KeyAlice, "claude-3-opus").Code, "the key's model list carries over")
	require.Equal(t, http.StatusUnauthorized, verify(t, h, lt.KeyBobExpired, "").Code)
	require.Contains(t, verify(t, h, lt.KeyBobExpired, "").Body.String(), "expired_key")
	require.Equal(t, http.StatusUnauthorized, verify(t, h, lt.KeyBlocked, "").Code)
	require.Equal(t, http.StatusUnauthorized, verify(t, h, lt.KeyDashboard, "").Code, "dashboard sessions are not imported")
	require.Equal(t, http.StatusOK, verify(t, h, lt.KeyOrphan, "").Code, "an ownerless import still works")

	// A change in LiteLLM is picked up as an update of just that field.
	lt.Exec(t, from, `UPDATE "LiteLLM_VerificationToken" SET spend = 19.5, blocked = true WHERE token = $1`, lt.Hash(lt.KeyAlice))
	lt.Exec(t, from, `UPDATE "LiteLLM_UserTable" SET user_role = 'proxy_admin_viewer' WHERE user_id = 'bob'`)
	third, _ := importOnce(t, from, st, false)
	require.Equal(t, []litellmimport.Change{
		{Op: "update", Kind: "user", ID: "bob", Fields: []string{"user_role"}},
		{Op: "update", Kind: "key", ID: "sk-...bcdE (" + lt.Hash(lt.KeyAlice)[:12] + ")", Fields: []string{"spend", "blocked"}},
	}, third.Changes)
	fourth, _ := importOnce(t, from, st, false)
	require.Zero(t, fourth.Changed())
}

func TestImportRefusesANonLiteLLMDatabase(t *testing.T) {
	_, err := litellmimport.Import(t.Context(), dbtest.PostgresURL(t), target(t), litellmimport.Options{})
	require.ErrorIs(t, err, litellmimport.ErrNotLiteLLM)
}

func TestTimeFormats(t *testing.T) {
	var v struct {
		A, B, C *litellmimport.Time
	}
	require.NoError(t, json.Unmarshal([]byte(`{"A":"2024-05-01T12:34:56.789","B":"2024-05-01T14:34:56.789+02:00","C":"infinity"}`), &v))
	require.True(t, v.A.Equal(v.B.Time))
	require.True(t, v.C.IsZero())
	require.Error(t, json.Unmarshal([]byte(`{"A":"yesterday"}`), &v))
}

// targets opens an empty Keygate store on each target database.
func targets(t *testing.T) map[string]store.Store {
	t.Helper()
	sq, err := gormstore.Open(context.Background(), gormstore.Options{SQLitePath: dbtest.SQLitePath(t), Logger: quiet()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sq.Close() })
	return map[string]store.Store{"sqlite": sq, "postgres": target(t)}
}
