// Package litellmtest builds LiteLLM databases for tests: LiteLLM's real
// schema, made by applying LiteLLM's own migrations (read at run time from
// shared/litellm-migrations, see MigrationsDir) to a fresh PostgreSQL
// database, and filled with fixture rows of the kinds real deployments
// hold. Where the migrations are missing, tests skip loudly (and fail under
// KEYGATE_TEST_REQUIRE_ALL=1).
//
// The fixture (NewSource) has a row for every rule the importer must carry
// or report: every role and the legacy ones, SSO users, a duplicate e-mail,
// members_with_roles as a list and as LiteLLM's "{}" default, per-member
// budgets, key budgets through budget_id, route limits, LiteLLM's special
// model names, an organization with a budget, pending, expired and
// accepted invitations, daily spend, fields Keygate has no place for, and
// live, expired, blocked, ownerless, dashboard-session, raw-token and
// dangling-team keys. Keys lists every key with what LiteLLM answers for
// it.
package litellmtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Raw LiteLLM keys ("sk-" + 22 URL-safe characters, as LiteLLM makes
// them). The source holds their SHA-256, except KeyRawLegacy, which a
// pre-2024 LiteLLM stored as is.
const (
	KeyAlice            = "sk-aLiCe0123456789_abcdE"
	KeyAlicePersonal    = "sk-aLiCePersonal-012345"
	KeyBobExpired       = "sk-b0bExpired-456789abcd"
	KeyDashboard        = "sk-dashBoardSession12345"
	KeyOrphan           = "sk-orphanKey-0123456789a"
	KeyGoneTeam         = "sk-goneTeam-0123456789ab"
	KeyBlocked          = "sk-blockedKey-0123456789"
	KeyDupAlias         = "sk-dupAlias-0123456789ab"
	KeyAdminRoutes      = "sk-adminRoutes-01234567"
	KeyAdminLLM         = "sk-adminLLMonly-0123456"
	KeyAdminWildcard    = "sk-adminWildcard-012345"
	KeyNoDefault        = "sk-noDefaultPersonal-01"
	KeyNoDefaultTeam    = "sk-noDefaultTeam-012345"
	KeyAllTeamModels    = "sk-allTeamModels-012345"
	KeySpenderPersonal  = "sk-spenderPersonal-0123"
	KeySpenderTeam      = "sk-spenderTeam-01234567"
	KeyMemberCapped     = "sk-memberCapped-0123456"
	KeyBudgetSpent      = "sk-budgetIdSpent-012345"
	KeyBudgetOK         = "sk-budgetIdOK-012345678"
	KeyRawLegacy        = "sk-rawLegacyToken-01234"
	KeyAppOwner         = "sk-appOwnerCarol-012345"
	KeyRoleNull         = "sk-roleNullUser-0123456"
	KeyOrgAdmin         = "sk-orgAdminUser-0123456"
	KeyDave             = "sk-davePersonal-0123456"
	KeyTeamOver         = "sk-teamOverBudget-01234"
	KeyTeamBlocked      = "sk-teamBlocked-01234567"
	AlicePasswordHash   = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
	InvitationPending   = "5b0c7e1e-3f4a-4c55-9d7e-6f1c2a3b4c5d"
	InvitationExpired   = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
	InvitationAccepted  = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
	SSOAdminSubject     = "idp|sso-admin"
	SSONoEmailSubject   = "idp|sso-noemail"
	DailySpendAliceDay1 = 1.25
	DailySpendAliceDay2 = 2.0
)

// Hash is the SHA-256 hex of a raw key (LiteLLM's token column).
func Hash(raw string) string {
	s := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(s[:])
}

// Secrets are every raw key and the password hash of the fixture: no
// report, log or answer may show one.
func Secrets() []string {
	out := []string{AlicePasswordHash}
	for _, k := range Keys() {
		out = append(out, k.Raw)
	}
	return out
}

// Fixture key verdicts: what LiteLLM answers a request on an LLM route.
const (
	Allowed       = "allowed"
	Expired       = "expired"
	Blocked       = "blocked"        // the key, its owner or its team is blocked
	Unknown       = "unknown"        // LiteLLM cannot find or use the key at all
	RouteDenied   = "route denied"   // outside the key's allowed_routes
	ModelDenied   = "model denied"   // a model list refuses the model
	BudgetDenied  = "budget denied"  // a budget that applies is used up
	NotApplicable = "not applicable" // no request is asked about
)

// Key is one key of the fixture, with what LiteLLM's rules (auth_checks.py,
// route_checks.py, user_api_key_auth.py) answer for a request by it.
type Key struct {
	Name string
	Raw  string
	// Route and Model make the request asked about (POST Route with
	// {"model": Model}).
	Route, Model string
	// LiteLLM is the verdict and Why the rule that gives it.
	LiteLLM, Why string
}

// Keys lists every key row of the fixture with LiteLLM's answer.
func Keys() []Key {
	const chat = "/v1/chat/completions"
	return []Key{
		{"alice team key", KeyAlice, chat, "gpt-4o", Allowed, "key and team lists allow gpt-4o; budgets left"},
		{"alice team key, other model", KeyAlice, chat, "claude-3-opus", ModelDenied, "the key's list is [gpt-4o]"},
		{"alice personal key", KeyAlicePersonal, chat, "gpt-4o-mini", Allowed, "the owner's list allows it (personal key)"},
		{"alice personal key, other model", KeyAlicePersonal, chat, "claude-3-opus", ModelDenied, "the owner's list applies to personal keys"},
		{"expired", KeyBobExpired, chat, "gpt-4o", Expired, "expires < now"},
		{"dashboard session", KeyDashboard, chat, "gpt-4o", Unknown, "UI session keys are not API keys (not imported)"},
		{"owner does not exist", KeyOrphan, chat, "gpt-4o", Allowed, "no user object: no user checks; llm_api_routes allows chat"},
		{"owner does not exist, management route", KeyOrphan, "/key/generate", "", RouteDenied, "llm_api_routes excludes management"},
		{"team does not exist", KeyGoneTeam, chat, "gpt-4o", Unknown, "get_team_object raises: team not in db"},
		{"blocked", KeyBlocked, chat, "gpt-4o", Blocked, "blocked key"},
		{"duplicate alias", KeyDupAlias, chat, "gpt-4o", Allowed, "aliases do not limit access"},
		{"admin limited to embeddings: chat", KeyAdminRoutes, chat, "gpt-4o", RouteDenied, "allowed_routes binds every role"},
		{"admin limited to embeddings: embeddings", KeyAdminRoutes, "/v1/embeddings", "text-embedding-3-small", Allowed, "exact route"},
		{"admin limited to embeddings: /user/list", KeyAdminRoutes, "/user/list", "", RouteDenied, "even for proxy_admin"},
		{"admin limited to llm_api_routes: chat", KeyAdminLLM, chat, "gpt-4o", Allowed, "route group"},
		{"admin limited to llm_api_routes: /user/list", KeyAdminLLM, "/user/list", "", RouteDenied, "route group excludes management"},
		{"admin limited to /v1/*: chat", KeyAdminWildcard, chat, "gpt-4o", Allowed, "wildcard"},
		{"admin limited to /v1/*: /team/list", KeyAdminWildcard, "/team/list", "", RouteDenied, "wildcard does not match"},
		{"no-default-models, personal key", KeyNoDefault, chat, "gpt-4o", ModelDenied, "can_user_call_model: no default model access"},
		{"no-default-models, team key", KeyNoDefaultTeam, chat, "gpt-4o", Allowed, "team keys use the team's models"},
		{"all-team-models key", KeyAllTeamModels, chat, "gpt-4o-mini", Allowed, "the team's list"},
		{"all-team-models key, other model", KeyAllTeamModels, chat, "claude-3-opus", ModelDenied, "outside the team's list"},
		{"owner over personal budget, personal key", KeySpenderPersonal, chat, "gpt-4o", BudgetDenied, "user spend 20 > max_budget 10"},
		{"owner over personal budget, team key", KeySpenderTeam, chat, "gpt-4o", Allowed, "personal budget does not bind team keys"},
		{"member over budget in team", KeyMemberCapped, chat, "gpt-4o", BudgetDenied, "membership budget_id: spend 6 >= 5"},
		{"key budget through budget_id, spent", KeyBudgetSpent, chat, "gpt-4o", BudgetDenied, "budget table max_budget 1 <= spend 2"},
		{"key budget through budget_id, left", KeyBudgetOK, chat, "gpt-4o", Allowed, "budget table max_budget 50 > spend 2"},
		{"raw token row", KeyRawLegacy, chat, "gpt-4o", Unknown, "LiteLLM looks keys up by hash: a raw token never matches"},
		{"legacy role app_owner", KeyAppOwner, chat, "gpt-4o", Allowed, "unknown roles act as internal_user"},
		{"role NULL", KeyRoleNull, chat, "gpt-4o", Allowed, "no role acts as internal_user"},
		{"role org_admin", KeyOrgAdmin, chat, "gpt-4o", Allowed, "org_admin without organization acts as internal_user"},
		{"personal key of a member of a blocked team", KeyDave, chat, "gpt-4o", Allowed, "a personal key has no team"},
		{"team over budget", KeyTeamOver, chat, "gpt-4o", BudgetDenied, "team spend 15 > max_budget 10"},
		{"blocked team", KeyTeamBlocked, chat, "gpt-4o", Blocked, "team is blocked"},
	}
}

// Fixed fixture times.
var (
	far  = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	past = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
)

// r is one row: column → value.
type r map[string]any

// rows is the fixture, table by table, in insertion order (foreign keys).
func rows(now time.Time) []struct {
	table string
	rows  []r
} {
	arr := func(s ...string) []string { return append([]string{}, s...) }
	budget := func(id string, max float64, extra r) r {
		row := r{"budget_id": id, "max_budget": max, "created_by": "bob", "updated_by": "bob"}
		for k, v := range extra {
			row[k] = v
		}
		return row
	}
	user := func(id, role, email string, extra r) r {
		row := r{"user_id": id}
		if role != "" {
			row["user_role"] = role
		}
		if email != "" {
			row["user_email"] = email
		}
		for k, v := range extra {
			row[k] = v
		}
		return row
	}
	member := func(id, role string) map[string]any {
		return map[string]any{"user_id": id, "user_email": nil, "role": role}
	}
	key := func(raw, user string, extra r) r {
		row := r{"token": Hash(raw), "key_name": "sk-..." + raw[len(raw)-4:]}
		if user != "" {
			row["user_id"] = user
		}
		for k, v := range extra {
			row[k] = v
		}
		return row
	}
	return []struct {
		table string
		rows  []r
	}{
		{`LiteLLM_BudgetTable`, []r{
			budget("b-alice", 50, nil),
			budget("b-member", 5, r{"tpm_limit": 10, "rpm_limit": 2}),
			budget("b-key-spent", 1, r{"tpm_limit": 100, "rpm_limit": 5, "budget_duration": "30d", "soft_budget": 0.5}),
			budget("b-key-ok", 50, r{"rpm_limit": 7}),
			budget("b-org", 1000, nil),
		}},
		{`LiteLLM_OrganizationTable`, []r{
			{"organization_id": "org-1", "organization_alias": "Org One", "budget_id": "b-org", "models": arr("gpt-4o"),
				"spend": 300.0, "created_by": "bob", "updated_by": "bob"},
		}},
		{`LiteLLM_UserTable`, []r{
			user("admin-routes", "proxy_admin", "admin-routes@example.com", nil),
			user("alice", "internal_user", "alice@example.com", r{"user_alias": "Alice", "password": AlicePasswordHash,
				"teams": arr("team-a"), "models": arr("gpt-4o", "gpt-4o-mini"), "spend": 12.5, "max_budget": 100.0,
				"budget_duration": "30d", "budget_reset_at": time.Date(2099, 2, 1, 0, 0, 0, 123e6, time.UTC), "tpm_limit": 1000,
				"rpm_limit": 10, "metadata": map[string]any{"dept": "ml", "level": 3}, "max_parallel_requests": 2,
				"created_at": time.Date(2024, 5, 1, 12, 34, 56, 789e6, time.UTC)}),
			user("bob", "proxy_admin", "Bob@Example.com", r{"teams": arr(), "models": arr()}),
			user("carol", "app_owner", "ALICE@example.com", r{"teams": arr("team-b"), "spend": 1.0,
				"created_at": time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)}),
			user("legacy-null", "", "", nil),
			user("legacy-org-admin", "org_admin", "orgadmin@example.com", r{"organization_id": "org-1"}),
			user("legacy-app-user", "app_user", "", nil),
			user("legacy-customer", "customer", "", nil),
			user("legacy-team", "team", "", nil),
			user("nodefault", "internal_user", "nodefault@example.com", r{"models": arr("no-default-models"), "teams": arr("team-a")}),
			user("spender", "internal_user", "spender@example.com", r{"max_budget": 10.0, "spend": 20.0, "teams": arr("team-a")}),
			user("member-capped", "internal_user", "capped@example.com", r{"teams": arr("team-a")}),
			user("dave", "internal_user", "dave@example.com", r{"teams": arr("team-blocked", "team-a")}),
			user("sso-admin", "proxy_admin", "sso-admin@example.com", r{"sso_user_id": SSOAdminSubject}),
			user("sso-noemail", "internal_user", "", r{"sso_user_id": SSONoEmailSubject}),
			user("invitee", "internal_user_viewer", "invitee@example.com", nil),
			user("default_user_id", "proxy_admin", "", r{"teams": arr(), "models": arr()}),
		}},
		{`LiteLLM_TeamTable`, []r{
			{"team_id": "team-a", "team_alias": "Team A", "organization_id": "org-1",
				"members_with_roles": []any{
					map[string]any{"user_id": "alice", "user_email": "alice@example.com", "role": "admin"},
					map[string]any{"user_id": nil, "user_email": "bob@example.com", "role": "user"},
					map[string]any{"user_id": nil, "user_email": "ghost@example.com", "role": "user"},
					member("nodefault", "user"), member("spender", "user"), member("member-capped", "user"), member("dave", "user"),
				},
				"models": arr("gpt-4o", "gpt-4o-mini"), "max_budget": 500.0, "spend": 40.0, "budget_duration": "1mo",
				"metadata": map[string]any{"cost_center": "42"}, "max_parallel_requests": 10,
				"team_member_permissions": arr("/key/info", "/key/update")},
			{"team_id": "team-b", "members_with_roles": map[string]any{}, "models": arr()},
			{"team_id": "team-blocked", "blocked": true, "members_with_roles": []any{member("dave", "user")}},
			{"team_id": "team-over", "max_budget": 10.0, "spend": 15.0, "members_with_roles": []any{member("alice", "user")}},
		}},
		{`LiteLLM_TeamMembership`, []r{
			{"user_id": "alice", "team_id": "team-a", "spend": 7.5, "budget_id": "b-alice"},
			{"user_id": "member-capped", "team_id": "team-a", "spend": 6.0, "budget_id": "b-member"},
			{"user_id": "spender", "team_id": "team-a", "spend": 1.0},
		}},
		{`LiteLLM_VerificationToken`, []r{
			key(KeyAlice, "alice", r{"key_alias": "alice-prod", "spend": 3.25, "expires": far, "models": arr("gpt-4o"),
				"team_id": "team-a", "max_budget": 20.0, "budget_duration": "30d", "tpm_limit": 100, "rpm_limit": 5,
				"metadata": map[string]any{"env": "prod"}, "created_by": "alice", "created_at": time.Date(2024, 7, 1, 8, 0, 0, 500e6, time.UTC),
				"max_parallel_requests": 5, "model_max_budget": map[string]any{"gpt-4o": map[string]any{"budget_limit": 1}},
				"aliases": map[string]any{"my-gpt": "gpt-4o"}, "permissions": map[string]any{"get_spend_routes": true}}),
			key(KeyAlicePersonal, "alice", r{"models": arr()}),
			key(KeyBobExpired, "bob", r{"expires": past, "blocked": false, "created_by": "bob"}),
			key(KeyDashboard, "alice", r{"team_id": "litellm-dashboard", "expires": far, "max_budget": 5.0}),
			key(KeyOrphan, "zed", r{"key_alias": "orphan", "allowed_routes": arr("llm_api_routes")}),
			key(KeyGoneTeam, "alice", r{"team_id": "team-gone"}),
			key(KeyBlocked, "bob", r{"blocked": true}),
			key(KeyDupAlias, "alice", r{"key_alias": "alice-prod"}),
			key(KeyAdminRoutes, "admin-routes", r{"allowed_routes": arr("/embeddings", "/v1/embeddings")}),
			key(KeyAdminLLM, "bob", r{"allowed_routes": arr("llm_api_routes")}),
			key(KeyAdminWildcard, "bob", r{"allowed_routes": arr("/v1/*")}),
			key(KeyNoDefault, "nodefault", nil),
			key(KeyNoDefaultTeam, "nodefault", r{"team_id": "team-a"}),
			key(KeyAllTeamModels, "alice", r{"team_id": "team-a", "models": arr("all-team-models")}),
			key(KeySpenderPersonal, "spender", nil),
			key(KeySpenderTeam, "spender", r{"team_id": "team-a"}),
			key(KeyMemberCapped, "member-capped", r{"team_id": "team-a"}),
			key(KeyBudgetSpent, "alice", r{"budget_id": "b-key-spent", "spend": 2.0}),
			key(KeyBudgetOK, "alice", r{"budget_id": "b-key-ok", "spend": 2.0}),
			{"token": KeyRawLegacy, "key_name": "sk-...1234", "user_id": "alice"},
			key(KeyAppOwner, "carol", nil),
			key(KeyRoleNull, "legacy-null", nil),
			key(KeyOrgAdmin, "legacy-org-admin", nil),
			key(KeyDave, "dave", nil),
			key(KeyTeamOver, "alice", r{"team_id": "team-over"}),
			key(KeyTeamBlocked, "dave", r{"team_id": "team-blocked"}),
		}},
		{`LiteLLM_InvitationLink`, []r{
			{"id": InvitationPending, "user_id": "invitee", "expires_at": now.Add(72 * time.Hour).Truncate(time.Millisecond),
				"created_at": now.Add(-96 * time.Hour), "created_by": "bob", "updated_at": now.Add(-96 * time.Hour), "updated_by": "bob"},
			{"id": InvitationExpired, "user_id": "invitee", "expires_at": past, "created_at": past.Add(-7 * 24 * time.Hour),
				"created_by": "bob", "updated_at": past, "updated_by": "bob"},
			{"id": InvitationAccepted, "user_id": "alice", "is_accepted": true, "accepted_at": past, "expires_at": past.Add(time.Hour),
				"created_at": past, "created_by": "bob", "updated_at": past, "updated_by": "bob"},
		}},
		// End users (the "user" field of LLM requests) are not imported:
		// the report names the table.
		{`LiteLLM_EndUserTable`, []r{{"user_id": "customer-1", "spend": 0.25}}},
		{`LiteLLM_DailyUserSpend`, []r{
			{"id": "d-1", "user_id": "alice", "date": "2025-11-01", "api_key": Hash(KeyAlice), "model": "gpt-4o",
				"prompt_tokens": 100, "completion_tokens": 50, "spend": DailySpendAliceDay1, "api_requests": 3, "updated_at": now},
			{"id": "d-2", "user_id": "alice", "date": "2025-11-02", "api_key": Hash(KeyAlice), "model": "gpt-4o",
				"prompt_tokens": 200, "completion_tokens": 80, "spend": DailySpendAliceDay2, "api_requests": 4, "updated_at": now},
			{"id": "d-3", "user_id": "alice", "date": "2025-11-02", "api_key": Hash(KeyDashboard), "model": "gpt-4o",
				"prompt_tokens": 10, "completion_tokens": 5, "spend": 0.5, "api_requests": 1, "updated_at": now},
		}},
	}
}

// NewSource creates a LiteLLM database (EmptyDatabase) holding the
// fixture and returns its URL.
func NewSource(t testing.TB) string {
	t.Helper()
	url := EmptyDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("litellmtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	for _, tbl := range rows(time.Now().UTC()) {
		for _, row := range tbl.rows {
			if err := insert(ctx, conn, tbl.table, row); err != nil {
				t.Fatalf("litellmtest: insert into %s: %v", tbl.table, err)
			}
		}
	}
	return url
}

func insert(ctx context.Context, conn *pgx.Conn, table string, row r) error {
	cols := make([]string, 0, len(row))
	for c := range row {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	ph := make([]string, len(cols))
	args := make([]any, len(cols))
	for i, c := range cols {
		ph[i] = fmt.Sprintf("$%d", i+1)
		args[i] = row[c]
		cols[i] = pgx.Identifier{c}.Sanitize()
	}
	_, err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", pgx.Identifier{table}.Sanitize(),
		strings.Join(cols, ", "), strings.Join(ph, ", ")), args...)
	return err
}

// Exec runs SQL (several statements allowed when there are no args)
// against url.
func Exec(t testing.TB, url, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("litellmtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("litellmtest: exec: %v", err)
	}
}
