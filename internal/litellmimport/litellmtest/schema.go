package litellmtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/internal/testutil/dbtest"
)

// EnvMigrations names a folder of LiteLLM's migrations (one sub-folder per
// migration, each with a migration.sql) to use instead of looking for
// shared/litellm-migrations above the working directory.
const EnvMigrations = "KEYGATE_LITELLM_MIGRATIONS"

// MigrationsDir finds LiteLLM's migrations: $KEYGATE_LITELLM_MIGRATIONS,
// else the first shared/litellm-migrations found walking up from the
// working directory (a test runs in its package folder, so this finds
// ../shared/litellm-migrations next to the repository). LiteLLM's SQL is
// read from there at run time and never copied into the repository.
func MigrationsDir() (string, error) {
	if d := os.Getenv(EnvMigrations); d != "" {
		if _, err := os.Stat(filepath.Join(d)); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvMigrations, d, err)
		}
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		c := filepath.Join(dir, "shared", "litellm-migrations")
		if st, err := os.Stat(c); err == nil && st.IsDir() {
			return c, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no shared/litellm-migrations in the working directory or above it, and " + EnvMigrations + " is not set")
		}
		dir = parent
	}
}

// Migration is one of LiteLLM's migrations.
type Migration struct {
	Name string // the folder name, e.g. "20250326162113_baseline"
	SQL  string
}

// Migrations reads LiteLLM's migrations in the order LiteLLM applies them
// (prisma migrate deploy: folder names, ascending).
func Migrations(dir string) ([]Migration, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "migration.sql"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no <name>/migration.sql", dir)
	}
	return out, nil
}

// migrations finds and reads the migrations, or skips t loudly (fails it
// under KEYGATE_TEST_REQUIRE_ALL=1) when they are not there.
func migrations(t testing.TB) []Migration {
	t.Helper()
	dir, err := MigrationsDir()
	if err != nil {
		dbtest.RequireOrSkip(t, "LiteLLM migrations (shared/litellm-migrations)", err.Error()+"; set "+EnvMigrations)
	}
	ms, err := Migrations(dir)
	if err != nil {
		dbtest.RequireOrSkip(t, "LiteLLM migrations (shared/litellm-migrations)", err.Error())
	}
	return ms
}

// EmptyDatabase returns the URL of a fresh PostgreSQL database holding
// LiteLLM's schema and no rows, built by applying LiteLLM's migrations in
// order as LiteLLM does. The migrations are applied once per content into
// a template database, which each call copies.
func EmptyDatabase(t testing.TB) string {
	t.Helper()
	ms := migrations(t)
	h := sha256.New()
	for _, m := range ms {
		fmt.Fprintf(h, "%s\x00%s\x00", m.Name, m.SQL)
	}
	tpl := "litellm_tpl_" + hex.EncodeToString(h.Sum(nil))[:16]
	dbtest.EnsureTemplate(t, tpl, func(url string) error { return Apply(context.Background(), url, ms) })
	return dbtest.PostgresDatabase(t, tpl)
}

// Apply runs the migrations against the database at url in order, each in
// its own transaction, recording each in _prisma_migrations as Prisma
// does (so the database looks like one LiteLLM's own start-up migrated).
func Apply(ctx context.Context, url string, ms []Migration) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	// Prisma's own bookkeeping table, as `prisma migrate deploy` creates it.
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
		"id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
		"migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
		"started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`); err != nil {
		return fmt.Errorf("create _prisma_migrations: %w", err)
	}
	for i, m := range ms {
		sum := sha256.Sum256([]byte(m.SQL))
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// No arguments: the simple protocol, which runs the file's
			// several statements in one round trip.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
				VALUES ($1, $2, now(), $3, 1)`, fmt.Sprintf("00000000-0000-4000-8000-%012d", i), hex.EncodeToString(sum[:]), m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}
