package litellmimport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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

func importOnce(t *testing.T, from string, st store.Store, o litellmimport.Options) (litellmimport.Report, string) {
	t.Helper()
	rep, err := litellmimport.Import(t.Context(), from, st, o)
	require.NoError(t, err)
	var out bytes.Buffer
	rep.Print(&out)
	s := out.String()
	for _, secret := range lt.Secrets() {
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
	_, n, err = st.ListSpend(ctx, store.SpendFilter{})
	require.NoError(t, err)
	require.Zero(t, n, "spend")
	_, n, err = st.ListAudit(ctx, store.AuditFilter{})
	require.NoError(t, err)
	require.Zero(t, n, "audit events")
}

// TestImportLiteLLM imports the fixture (LiteLLM's real schema) into each
// target database: a dry run predicts and writes nothing, the import
// carries every rule and reports what it cannot, and a second run changes
// nothing.
func TestImportLiteLLM(t *testing.T) {
	from := lt.NewSource(t)
	for name, st := range targets(t) {
		t.Run(name, func(t *testing.T) { testImport(t, from, st) })
	}
}

func testImport(t *testing.T, from string, st store.Store) {
	ctx := t.Context()
	opts := litellmimport.Options{SSOIssuer: "https://idp.example.com"}
	dryOpts := opts
	dryOpts.DryRun = true

	// A dry run reports everything and writes nothing.
	dry, out := importOnce(t, from, st, dryOpts)
	require.True(t, dry.DryRun)
	require.Equal(t, counts(17, 0, 0, 0), dry.Users)
	require.Equal(t, counts(4, 0, 0, 0), dry.Teams)
	require.Equal(t, counts(9, 0, 0, 1), dry.Memberships, "ghost@example.com is nobody")
	require.Equal(t, counts(23, 0, 0, 3), dry.Keys, "dashboard session, raw token and missing team are skipped")
	require.Equal(t, counts(1, 0, 0, 2), dry.Invitations, "the pending link; the used and the expired one are skipped")
	require.Equal(t, counts(3, 0, 0, 0), dry.Spend)
	require.Contains(t, out, "DRY RUN")
	require.Contains(t, out, "create user alice")
	require.Contains(t, out, "57 records would change.")
	require.Contains(t, out, "source schema: LiteLLM migration 2025")
	requireEmpty(t, st)

	first, out := importOnce(t, from, st, opts)
	require.Equal(t, dry.Changes, first.Changes, "the dry run predicts the real run")
	require.Equal(t, 57, first.Changed())
	require.Contains(t, out, "Passwords were not imported")
	for _, w := range []string{
		// 7. legacy roles: LiteLLM's meaning, with a warning
		`user carol: role "app_owner" is not one of Keygate's; imported as internal_user (as LiteLLM treats it)`,
		`user legacy-null: role NULL is not one of Keygate's; imported as internal_user`,
		`user legacy-org-admin: role "org_admin" is not one of Keygate's; imported as internal_user`,
		"user carol: e-mail is also user alice's; imported without an e-mail",
		"team team-a: a member without a known user_id or e-mail was skipped",
		"owner zed does not exist; imported without an owner",
		// 5. and a key LiteLLM refuses
		"its token is stored unhashed (LiteLLM before Dec 2023), so LiteLLM no longer accepts it; skipped",
		"team team-gone does not exist, so LiteLLM refuses the key; skipped",
		`alias "alice-prod" is taken by key sk-...bcdE; imported without an alias`,
		// What the report says it did not carry.
		"Access that differs from LiteLLM:",
		"team team-a: its organization org-1's budget 1000 (spent 300) and models [gpt-4o] are not enforced",
		"membership team-a/member-capped: LiteLLM's per-member tpm_limit/rpm_limit (budget b-member) are not enforced",
		"Fields not carried",
		"LiteLLM_VerificationToken.max_parallel_requests: 1",
		"LiteLLM_VerificationToken.model_max_budget: 1",
		"LiteLLM_VerificationToken.aliases: 1",
		"LiteLLM_VerificationToken.permissions: 1",
		"LiteLLM_BudgetTable.soft_budget: 1",
		"LiteLLM_UserTable.max_parallel_requests: 1",
		"LiteLLM_UserTable.organization_id: 1",
		"LiteLLM_TeamTable.max_parallel_requests: 1",
		"LiteLLM_TeamTable.team_member_permissions: 1",
		"Daily spend is imported as one entry per user, key, model and day",
		"LiteLLM tables with rows that are not imported: LiteLLM_EndUserTable",
		"Pending invitation links keep working",
	} {
		require.Contains(t, out, w)
	}
	require.Contains(t, first.Ignored, litellmimport.Ignored{Table: "LiteLLM_VerificationToken", Column: "max_parallel_requests", Rows: 1})

	// Running it again changes nothing.
	second, out := importOnce(t, from, st, opts)
	require.Zero(t, second.Changed(), out)
	require.Equal(t, counts(0, 0, 17, 0), second.Users)
	require.Equal(t, counts(0, 0, 4, 0), second.Teams)
	require.Equal(t, counts(0, 0, 9, 1), second.Memberships)
	require.Equal(t, counts(0, 0, 23, 3), second.Keys)
	require.Equal(t, counts(0, 0, 1, 2), second.Invitations)
	require.Equal(t, counts(0, 0, 3, 0), second.Spend)
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
	require.Equal(t, "internal_user", carol.Role, "7. LiteLLM treats app_owner as internal_user")
	require.Empty(t, carol.Email)
	bob, err := st.GetUser(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, "proxy_admin", bob.Role)
	// 2. The special model names keep their meaning.
	nd, err := st.GetUser(ctx, "nodefault")
	require.NoError(t, err)
	require.Equal(t, []string{"no-default-models"}, nd.Models)
	// 6. SSO links for the named issuer.
	sa, err := st.GetUserBySSO(ctx, "https://idp.example.com", lt.SSOAdminSubject)
	require.NoError(t, err)
	require.Equal(t, "sso-admin", sa.ID)
	sn, err := st.GetUserBySSO(ctx, "https://idp.example.com", lt.SSONoEmailSubject)
	require.NoError(t, err)
	require.Equal(t, "sso-noemail", sn.ID)

	m, err := st.GetMembership(ctx, "team-a", "alice")
	require.NoError(t, err)
	require.Equal(t, "admin", m.Role)
	require.Equal(t, 7.5, m.Spend)
	require.Equal(t, 50.0, *m.MaxBudgetInTeam)
	// 3. The per-member budget comes from LiteLLM_BudgetTable.
	m, err = st.GetMembership(ctx, "team-a", "member-capped")
	require.NoError(t, err)
	require.Equal(t, 5.0, *m.MaxBudgetInTeam)
	require.Equal(t, 6.0, m.Spend)
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
	// 1. Route limits.
	k, err = st.GetKey(ctx, lt.Hash(lt.KeyAdminRoutes))
	require.NoError(t, err)
	require.Equal(t, []string{"/embeddings", "/v1/embeddings"}, k.AllowedRoutes)
	orphan, err := st.GetKey(ctx, lt.Hash(lt.KeyOrphan))
	require.NoError(t, err)
	require.Empty(t, orphan.UserID)
	require.Equal(t, []string{"llm_api_routes"}, orphan.AllowedRoutes)
	require.Equal(t, "llm_api", orphan.KeyType)
	// 2. all-team-models is kept as LiteLLM's name.
	k, err = st.GetKey(ctx, lt.Hash(lt.KeyAllTeamModels))
	require.NoError(t, err)
	require.Equal(t, []string{"all-team-models"}, k.Models)
	// 4. A key's budget_id: max_budget, limits and period.
	k, err = st.GetKey(ctx, lt.Hash(lt.KeyBudgetSpent))
	require.NoError(t, err)
	require.Equal(t, 1.0, *k.MaxBudget)
	require.EqualValues(t, 100, *k.TPMLimit)
	require.EqualValues(t, 5, *k.RPMLimit)
	require.Equal(t, "30d", k.BudgetDuration)
	k, err = st.GetKey(ctx, lt.Hash(lt.KeyBudgetOK))
	require.NoError(t, err)
	require.Equal(t, 50.0, *k.MaxBudget)
	require.EqualValues(t, 7, *k.RPMLimit)
	// 5. Rows LiteLLM cannot match are not revived.
	for _, raw := range []string{lt.KeyDashboard, lt.KeyRawLegacy, lt.KeyGoneTeam} {
		_, err = st.GetKey(ctx, lt.Hash(raw))
		require.ErrorIs(t, err, store.ErrNotFound)
	}
	// Pending invitations keep their link (stored hashed) and expiry.
	inv, err := st.GetInvitation(ctx, lt.Hash(lt.InvitationPending))
	require.NoError(t, err)
	require.Equal(t, "invitee", inv.UserID)
	require.False(t, inv.IsAccepted)
	require.True(t, inv.ExpiresAt.After(time.Now()))
	_, err = st.GetInvitation(ctx, lt.Hash(lt.InvitationExpired))
	require.ErrorIs(t, err, store.ErrNotFound)
	// Daily spend: history for the Spend page, totals untouched.
	hist, n, err := st.ListSpend(ctx, store.SpendFilter{UserID: "alice"})
	require.NoError(t, err)
	require.EqualValues(t, 3, n)
	require.Equal(t, lt.DailySpendAliceDay1, hist[0].Spend)
	require.Equal(t, "team-a", hist[0].TeamID)
	require.Equal(t, "2025-11-01", hist[0].CreatedAt.UTC().Format("2006-01-02"))
	alice, err = st.GetUser(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, 12.5, alice.Spend, "imported history adds nothing to the totals")

	// A change in LiteLLM is picked up as an update of just that field.
	lt.Exec(t, from, `UPDATE "LiteLLM_VerificationToken" SET spend = 19.5, blocked = true WHERE token = $1`, lt.Hash(lt.KeyAlice))
	lt.Exec(t, from, `UPDATE "LiteLLM_UserTable" SET user_role = 'proxy_admin_viewer' WHERE user_id = 'bob'`)
	lt.Exec(t, from, `UPDATE "LiteLLM_VerificationToken" SET allowed_routes = ARRAY['info_routes'] WHERE token = $1`, lt.Hash(lt.KeyAdminLLM))
	t.Cleanup(func() {
		lt.Exec(t, from, `UPDATE "LiteLLM_VerificationToken" SET spend = 3.25, blocked = NULL WHERE token = $1`, lt.Hash(lt.KeyAlice))
		lt.Exec(t, from, `UPDATE "LiteLLM_UserTable" SET user_role = 'proxy_admin' WHERE user_id = 'bob'`)
		lt.Exec(t, from, `UPDATE "LiteLLM_VerificationToken" SET allowed_routes = ARRAY['llm_api_routes'] WHERE token = $1`, lt.Hash(lt.KeyAdminLLM))
	})
	third, _ := importOnce(t, from, st, opts)
	require.ElementsMatch(t, []litellmimport.Change{
		{Op: "update", Kind: "user", ID: "bob", Fields: []string{"user_role"}},
		{Op: "update", Kind: "key", ID: "sk-...bcdE (" + lt.Hash(lt.KeyAlice)[:12] + ")", Fields: []string{"spend", "blocked"}},
		{Op: "update", Kind: "key", ID: "sk-...3456 (" + lt.Hash(lt.KeyAdminLLM)[:12] + ")", Fields: []string{"allowed_routes", "key_type"}},
	}, third.Changes)
	fourth, _ := importOnce(t, from, st, opts)
	require.Zero(t, fourth.Changed())
}

// TestImportOptions: without an issuer sso_user_id is not carried (and
// the report says how to carry it); --strict-roles imports unknown roles
// as the least privileged one.
func TestImportOptions(t *testing.T) {
	from := lt.NewSource(t)
	st := target(t)
	_, out := importOnce(t, from, st, litellmimport.Options{StrictRoles: true})
	require.Contains(t, out, "2 users have an sso_user_id, which is not carried: pass --sso-issuer")
	require.Contains(t, out, `user carol: role "app_owner" is not one of Keygate's; imported as internal_user_viewer (--strict-roles)`)
	carol, err := st.GetUser(t.Context(), "carol")
	require.NoError(t, err)
	require.Equal(t, "internal_user_viewer", carol.Role)
	sa, err := st.GetUser(t.Context(), "sso-admin")
	require.NoError(t, err)
	require.Empty(t, sa.SSOSubject)

	// Naming the issuer later links the existing accounts.
	rep, _ := importOnce(t, from, st, litellmimport.Options{StrictRoles: true, SSOIssuer: "https://idp.example.com"})
	require.Contains(t, rep.Changes, litellmimport.Change{Op: "update", Kind: "user", ID: "sso-admin", Fields: []string{"sso_user_id"}})
	sa, err = st.GetUserBySSO(t.Context(), "https://idp.example.com", lt.SSOAdminSubject)
	require.NoError(t, err)
	require.Equal(t, "sso-admin", sa.ID)
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
