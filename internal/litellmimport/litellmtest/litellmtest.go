// Package litellmtest builds a LiteLLM database for tests: a fresh
// PostgreSQL schema (internal/testutil/dbtest) holding LiteLLM's tables
// under their exact, quoted Prisma names and PostgreSQL column types,
// filled with rows that exercise the importer: every role and one Keygate
// does not know, a duplicate e-mail, members_with_roles as a list and as
// LiteLLM's "{}" default, a per-member budget, and live, expired, blocked,
// ownerless and dashboard-session keys, one with a duplicate alias.
package litellmtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/internal/testutil/dbtest"
)

// Raw LiteLLM keys ("sk-" + 22 URL-safe characters, as LiteLLM makes
// them) whose SHA-256 the source holds.
const (
	// KeyAlice: alice's key in team-a, models [gpt-4o], budget 20, alias
	// "alice-prod", expires 2099.
	KeyAlice = "sk-aLiCe0123456789_abcdE"
	// KeyBobExpired expired in 2020.
	KeyBobExpired = "sk-b0bExpired-456789abcd"
	// KeyDashboard is a UI session key (team litellm-dashboard): skipped.
	KeyDashboard = "sk-dashBoardSession12345"
	// KeyOrphan belongs to user "zed", who does not exist; models
	// ["all-team-models"], allowed_routes ["llm_api_routes"].
	KeyOrphan = "sk-orphanKey-0123456789a"
	// KeyBlocked is blocked.
	KeyBlocked = "sk-blockedKey-0123456789"
	// KeyDupAlias reuses the alias "alice-prod".
	KeyDupAlias = "sk-dupAlias-0123456789ab"
	// AlicePasswordHash is alice's LiteLLM password hash, which must
	// never reach Keygate.
	AlicePasswordHash = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
)

// Hash is the SHA-256 hex of a raw key (LiteLLM's token column).
func Hash(raw string) string {
	s := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(s[:])
}

// schema is LiteLLM's DDL as Prisma generates it for PostgreSQL, for the
// tables and columns the importer reads plus a few it must ignore.
const schema = `
CREATE TABLE "LiteLLM_BudgetTable" (
  "budget_id" TEXT NOT NULL PRIMARY KEY, "max_budget" DOUBLE PRECISION, "soft_budget" DOUBLE PRECISION,
  "tpm_limit" BIGINT, "rpm_limit" BIGINT, "budget_duration" TEXT, "budget_reset_at" TIMESTAMP(3),
  "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "created_by" TEXT NOT NULL,
  "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_by" TEXT NOT NULL);
CREATE TABLE "LiteLLM_UserTable" (
  "user_id" TEXT NOT NULL PRIMARY KEY, "user_alias" TEXT, "team_id" TEXT, "sso_user_id" TEXT UNIQUE,
  "organization_id" TEXT, "password" TEXT, "teams" TEXT[] DEFAULT ARRAY[]::TEXT[], "user_role" TEXT,
  "max_budget" DOUBLE PRECISION, "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0, "user_email" TEXT, "models" TEXT[],
  "metadata" JSONB NOT NULL DEFAULT '{}', "max_parallel_requests" INTEGER, "tpm_limit" BIGINT, "rpm_limit" BIGINT,
  "budget_duration" TEXT, "budget_reset_at" TIMESTAMP(3), "allowed_cache_controls" TEXT[] DEFAULT ARRAY[]::TEXT[],
  "model_spend" JSONB NOT NULL DEFAULT '{}', "model_max_budget" JSONB NOT NULL DEFAULT '{}',
  "created_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP, "updated_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE "LiteLLM_TeamTable" (
  "team_id" TEXT NOT NULL PRIMARY KEY, "team_alias" TEXT, "organization_id" TEXT, "admins" TEXT[], "members" TEXT[],
  "members_with_roles" JSONB NOT NULL DEFAULT '{}', "metadata" JSONB NOT NULL DEFAULT '{}', "max_budget" DOUBLE PRECISION,
  "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0, "models" TEXT[], "max_parallel_requests" INTEGER, "tpm_limit" BIGINT,
  "rpm_limit" BIGINT, "budget_duration" TEXT, "budget_reset_at" TIMESTAMP(3), "blocked" BOOLEAN NOT NULL DEFAULT false,
  "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "model_spend" JSONB NOT NULL DEFAULT '{}', "team_member_permissions" TEXT[] DEFAULT ARRAY[]::TEXT[]);
CREATE TABLE "LiteLLM_TeamMembership" (
  "user_id" TEXT NOT NULL, "team_id" TEXT NOT NULL, "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
  "total_spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0, "budget_id" TEXT, PRIMARY KEY ("user_id", "team_id"));
CREATE TABLE "LiteLLM_VerificationToken" (
  "token" TEXT NOT NULL PRIMARY KEY, "key_name" TEXT, "key_alias" TEXT, "soft_budget_cooldown" BOOLEAN NOT NULL DEFAULT false,
  "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0, "expires" TIMESTAMP(3), "models" TEXT[], "aliases" JSONB NOT NULL DEFAULT '{}',
  "config" JSONB NOT NULL DEFAULT '{}', "user_id" TEXT, "team_id" TEXT, "permissions" JSONB NOT NULL DEFAULT '{}',
  "max_parallel_requests" INTEGER, "metadata" JSONB NOT NULL DEFAULT '{}', "blocked" BOOLEAN, "tpm_limit" BIGINT,
  "rpm_limit" BIGINT, "max_budget" DOUBLE PRECISION, "budget_duration" TEXT, "budget_reset_at" TIMESTAMP(3),
  "allowed_cache_controls" TEXT[] DEFAULT ARRAY[]::TEXT[], "allowed_routes" TEXT[] DEFAULT ARRAY[]::TEXT[],
  "model_spend" JSONB NOT NULL DEFAULT '{}', "model_max_budget" JSONB NOT NULL DEFAULT '{}', "budget_id" TEXT,
  "organization_id" TEXT, "created_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP, "created_by" TEXT,
  "updated_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP, "updated_by" TEXT, "last_active" TIMESTAMP(3));
`

const rows = `
INSERT INTO "LiteLLM_BudgetTable" (budget_id, max_budget, created_by, updated_by) VALUES ('b-alice', 50, 'admin', 'admin');
INSERT INTO "LiteLLM_UserTable" (user_id, user_email, user_alias, user_role, password, teams, models, spend, max_budget,
  budget_duration, budget_reset_at, tpm_limit, rpm_limit, metadata, created_at) VALUES
  ('alice', 'alice@example.com', 'Alice', 'internal_user', '` + AlicePasswordHash + `', ARRAY['team-a'], ARRAY['gpt-4o','gpt-4o-mini'],
   12.5, 100, '30d', '2099-02-01 00:00:00.123', 1000, 10, '{"dept":"ml","level":3}', '2024-05-01 12:34:56.789'),
  ('bob', 'Bob@Example.com', NULL, 'proxy_admin', NULL, ARRAY[]::TEXT[], ARRAY[]::TEXT[], 0, NULL, NULL, NULL, NULL, NULL, '{}', NULL),
  ('carol', 'ALICE@example.com', NULL, 'app_owner', NULL, ARRAY['team-b'], NULL, 1, NULL, NULL, NULL, NULL, NULL, '{}', '2024-06-01 00:00:00'),
  ('default_user_id', NULL, NULL, 'proxy_admin', NULL, ARRAY[]::TEXT[], ARRAY[]::TEXT[], 0, NULL, NULL, NULL, NULL, NULL, '{}', NULL);
INSERT INTO "LiteLLM_TeamTable" (team_id, team_alias, members_with_roles, models, max_budget, spend, budget_duration, metadata) VALUES
  ('team-a', 'Team A', '[{"user_id":"alice","user_email":"alice@example.com","role":"admin"},
                         {"user_id":null,"user_email":"bob@example.com","role":"user"},
                         {"user_id":null,"user_email":"ghost@example.com","role":"user"}]',
   ARRAY['gpt-4o','gpt-4o-mini'], 500, 40, '1mo', '{"cost_center":"42"}'),
  ('team-b', NULL, '{}', ARRAY[]::TEXT[], NULL, 0, NULL, '{}');
INSERT INTO "LiteLLM_TeamMembership" (user_id, team_id, spend, budget_id) VALUES ('alice', 'team-a', 7.5, 'b-alice');
INSERT INTO "LiteLLM_VerificationToken" (token, key_name, key_alias, spend, expires, models, user_id, team_id, max_budget,
  budget_duration, tpm_limit, rpm_limit, blocked, allowed_routes, metadata, created_by, created_at) VALUES
  ($1, 'sk-...bcdE', 'alice-prod', 3.25, '2099-01-01 00:00:00', ARRAY['gpt-4o'], 'alice', 'team-a', 20, '30d', 100, 5, NULL,
   ARRAY[]::TEXT[], '{"env":"prod"}', 'alice', '2024-07-01 08:00:00.5'),
  ($2, 'sk-...abcd', NULL, 0, '2020-01-01 00:00:00', ARRAY[]::TEXT[], 'bob', NULL, NULL, NULL, NULL, NULL, false,
   ARRAY[]::TEXT[], '{}', 'bob', NULL),
  ($3, 'sk-...2345', NULL, 0, '2099-01-01 00:00:00', ARRAY[]::TEXT[], 'alice', 'litellm-dashboard', 5, NULL, NULL, NULL, NULL,
   ARRAY[]::TEXT[], '{}', NULL, NULL),
  ($4, 'sk-...789a', 'orphan', 0, NULL, ARRAY['all-team-models'], 'zed', 'team-gone', NULL, NULL, NULL, NULL, NULL,
   ARRAY['llm_api_routes'], '{}', NULL, NULL),
  ($5, 'sk-...6789', NULL, 0, NULL, ARRAY[]::TEXT[], 'bob', NULL, NULL, NULL, NULL, NULL, true, ARRAY[]::TEXT[], '{}', NULL, NULL),
  ($6, 'sk-...89ab', 'alice-prod', 0, NULL, ARRAY[]::TEXT[], 'alice', NULL, NULL, NULL, NULL, NULL, NULL, ARRAY[]::TEXT[], '{}', NULL, NULL);
`

// NewSource creates and fills a LiteLLM database in a fresh schema and
// returns its URL (whose search_path selects that schema).
func NewSource(t testing.TB) string {
	t.Helper()
	url := dbtest.PostgresURL(t)
	Exec(t, url, schema)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("litellmtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	// Multiple statements need the simple protocol, which cannot take
	// parameters: insert the key rows as a separate, parameterised step.
	i := strings.Index(rows, `INSERT INTO "LiteLLM_VerificationToken"`)
	if _, err := conn.Exec(ctx, rows[:i]); err != nil {
		t.Fatalf("litellmtest: insert rows: %v", err)
	}
	if _, err := conn.Exec(ctx, rows[i:], Hash(KeyAlice), Hash(KeyBobExpired), Hash(KeyDashboard), Hash(KeyOrphan),
		Hash(KeyBlocked), Hash(KeyDupAlias)); err != nil {
		t.Fatalf("litellmtest: insert keys: %v", err)
	}
	return url
}

// Exec runs SQL (several statements allowed) against url.
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
