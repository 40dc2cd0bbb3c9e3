package dbtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

// helperEnv makes the test binary act as a child process for the tests
// that need a fresh process (the PostgreSQL lookup happens once per
// process) or must watch one exit.
const helperEnv = "KEYGATE_DBTEST_HELPER"

func TestHelperProcess(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "":
		return // only a child process started by runHelper does anything
	case "postgres":
		PostgresURL(t)
		fmt.Println("HELPER-GOT-URL")
	case "require":
		RequireOrSkip(t, "Chromium", "not installed")
		fmt.Println("HELPER-NOT-SKIPPED")
	case "cluster":
		c, err := startCluster()
		require.NoError(t, err)
		fmt.Printf("HELPER-CLUSTER %s %s\n", c.dir, c.url)
		os.Exit(0) // no cleanup: the watchdog must do it
	}
}

func runHelper(t *testing.T, mode string, env ...string) (string, error) {
	t.Helper()
	return runHelperArgs(t, mode, []string{"-test.run=^TestHelperProcess$", "-test.v"}, env...)
}

func runHelperArgs(t *testing.T, mode string, args []string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, EnvRequireAll+"=")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPostgresURLGivesFreshSchema(t *testing.T) {
	var schema string
	t.Run("use", func(t *testing.T) {
		dsn := PostgresURL(t)
		require.Contains(t, dsn, "search_path=kg_")
		ctx := t.Context()
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		require.NoError(t, conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema))
		require.True(t, strings.HasPrefix(schema, "kg_"), schema)
		var n int
		require.NoError(t, conn.QueryRow(ctx,
			"SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()").Scan(&n))
		require.Zero(t, n, "the schema starts empty")
		_, err = conn.Exec(ctx, "CREATE TABLE t (id int)")
		require.NoError(t, err)
		other := PostgresURL(t)
		require.NotEqual(t, dsn, other)
	})
	if t.Skipped() || schema == "" {
		return
	}
	var exists bool
	require.NoError(t, withConn(t, pg.url, func(conn *pgx.Conn) error {
		return conn.QueryRow(t.Context(),
			"SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)", schema).Scan(&exists)
	}))
	require.False(t, exists, "the schema is dropped when the test ends")
}

func withConn(t *testing.T, dsn string, fn func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return fn(conn)
}

func TestSQLitePath(t *testing.T) {
	p := SQLitePath(t)
	require.True(t, filepath.IsAbs(p))
	require.NotEqual(t, p, SQLitePath(t))
	require.DirExists(t, filepath.Dir(p))
}

func TestWithSearchPath(t *testing.T) {
	require.Equal(t, "postgres://u@h:1/db?search_path=kg_x&sslmode=disable",
		withSearchPath("postgres://u@h:1/db?sslmode=disable", "kg_x"))
	require.Equal(t, "postgresql://h/db?search_path=kg_x",
		withSearchPath("postgresql://h/db?search_path=public", "kg_x"))
	require.Equal(t, "host=h dbname=db search_path=kg_x", withSearchPath("host=h dbname=db", "kg_x"))
}

func TestEnvSetButServerDownFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	out, err := runHelper(t, "postgres", fmt.Sprintf("%s=postgres://postgres@127.0.0.1:%d/x?sslmode=disable", EnvPostgres, port))
	require.Error(t, err, "must fail, not skip: %s", out)
	require.Contains(t, out, EnvPostgres+" is set but PostgreSQL does not answer")
	require.NotContains(t, out, "HELPER-GOT-URL")
	require.NotContains(t, out, "SKIP")
}

func TestRequireOrSkip(t *testing.T) {
	out, err := runHelper(t, "require")
	require.NoError(t, err, out)
	require.Contains(t, out, "--- SKIP")
	require.Contains(t, out, "CHROMIUM NOT AVAILABLE: not installed")
	require.NotContains(t, out, "HELPER-NOT-SKIPPED")

	out, err = runHelper(t, "require", EnvRequireAll+"=1")
	require.Error(t, err, out)
	require.Contains(t, out, "--- FAIL")
	require.Contains(t, out, "CHROMIUM NOT AVAILABLE")
}

// TestSkipSummary: without -v the testing package prints nothing about a
// skipped test, so Main ends the run with one line per test that lacked
// a real component, naming it and how to get it.
func TestSkipSummary(t *testing.T) {
	out, err := runHelperArgs(t, "require", []string{"-test.run=^TestHelperProcess$"})
	require.NoError(t, err, out)
	require.NotContains(t, out, "--- SKIP", "not verbose")
	require.Contains(t, out, "SKIPPED: TestHelperProcess — CHROMIUM NOT AVAILABLE: not installed")
	require.Contains(t, out, "1 test skipped")
	require.Contains(t, out, EnvRequireAll+"=1")

	// Nothing skipped, nothing said.
	out, err = runHelperArgs(t, "", []string{"-test.run=^TestHelperProcess$"})
	require.NoError(t, err, out)
	require.NotContains(t, out, "SKIPPED")
}

func TestThrowawayCluster(t *testing.T) {
	if _, err := findServerBin(); err != nil {
		RequireOrSkip(t, "PostgreSQL server binaries", err.Error())
	}
	c, err := startCluster()
	require.NoError(t, err)
	stopped := false
	defer func() {
		if !stopped {
			c.stop()
		}
	}()
	require.NoError(t, probe(c.url, 5*time.Second))
	require.NoError(t, execOnce(c.url, "CREATE SCHEMA kg_probe"))
	c.stop()
	stopped = true
	require.NoDirExists(t, c.dir)
	require.Error(t, probe(c.url, time.Second), "stopped")
}

func TestThrowawayClusterWatchdog(t *testing.T) {
	if _, err := findServerBin(); err != nil {
		RequireOrSkip(t, "PostgreSQL server binaries", err.Error())
	}
	out, err := runHelper(t, "cluster")
	require.NoError(t, err, out)
	var dir, url string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "HELPER-CLUSTER" {
			dir, url = f[1], f[2]
		}
	}
	require.NotEmpty(t, url, out)
	require.Eventually(t, func() bool {
		_, statErr := os.Stat(dir)
		return os.IsNotExist(statErr) && probe(url, time.Second) != nil
	}, 30*time.Second, 200*time.Millisecond, "the watchdog stops the cluster and removes %s after the process exits", dir)
}

// TestOwnCluster: a test's own cluster can be stopped, restarted, frozen
// and thawed, and answers again each time.
func TestOwnCluster(t *testing.T) {
	c := NewCluster(t)
	url := c.URL()
	require.NoError(t, probe(url, 10*time.Second))
	c.Stop()
	require.Error(t, probe(url, 2*time.Second))
	c.Start()
	require.NoError(t, probe(url, 10*time.Second))

	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	c.Freeze()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = conn.Ping(ctx)
	cancel()
	require.Error(t, err, "a frozen server does not answer")
	c.Thaw()
	require.NoError(t, probe(url, 10*time.Second))
}
