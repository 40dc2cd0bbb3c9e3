package litellmtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	lt "github.com/keygate/keygate/internal/litellmimport/litellmtest"
	"github.com/keygate/keygate/internal/testutil/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestSourceIsLiteLLMsSchema checks the helper builds LiteLLM's schema
// from its own migrations (all of them, recorded as Prisma records them)
// and that the fixture fits it.
func TestSourceIsLiteLLMsSchema(t *testing.T) {
	dir, err := lt.MigrationsDir()
	if err != nil {
		dbtest.RequireOrSkip(t, "LiteLLM migrations", err.Error())
	}
	ms, err := lt.Migrations(dir)
	require.NoError(t, err)
	url := lt.NewSource(t)
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var applied int
	var last string
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*), max(migration_name) FROM "_prisma_migrations"`).Scan(&applied, &last))
	require.Equal(t, len(ms), applied)
	require.Equal(t, ms[len(ms)-1].Name, last)
	var tables int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'LiteLLM\_%'`).Scan(&tables))
	require.Equal(t, 37, tables, "LiteLLM's 37 tables")
	var keys int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM "LiteLLM_VerificationToken"`).Scan(&keys))
	require.Equal(t, 26, keys)

	// A second database is a fresh copy: rows of one test never reach another.
	other := lt.EmptyDatabase(t)
	c2, err := pgx.Connect(context.Background(), other)
	require.NoError(t, err)
	defer c2.Close(context.Background())
	require.NoError(t, c2.QueryRow(context.Background(), `SELECT count(*) FROM "LiteLLM_VerificationToken"`).Scan(&keys))
	require.Zero(t, keys)
}

// TestMissingMigrationsSkipLoudly: with the folder missing the helper
// skips (and under KEYGATE_TEST_REQUIRE_ALL=1 fails) naming it.
func TestMissingMigrationsSkipLoudly(t *testing.T) {
	t.Setenv(lt.EnvMigrations, t.TempDir()+"/nowhere")
	_, err := lt.MigrationsDir()
	require.ErrorContains(t, err, "nowhere")
	t.Setenv(lt.EnvMigrations, t.TempDir())
	dir, err := lt.MigrationsDir()
	require.NoError(t, err)
	_, err = lt.Migrations(dir)
	require.ErrorContains(t, err, "holds no <name>/migration.sql")
}
