// Package dbtest finds the databases Keygate's tests run against, so that
// every package's tests use real PostgreSQL and SQLite rather than fakes.
//
// PostgreSQL is looked for, once per test process, in this order:
//  1. KEYGATE_TEST_POSTGRES (URL or keyword DSN). If it is set and the
//     server does not answer, tests fail: CI must never skip silently.
//  2. 127.0.0.1:5432, user postgres, database test, if it answers in ~1 s.
//  3. A throwaway cluster from the installed server binaries
//     (/usr/lib/postgresql/*/bin), on a free port, in a temp dir. It is
//     stopped by Main, or by a watchdog process when the test process
//     exits however it exits.
//
// Only when none of these works do PostgreSQL tests skip, loudly; with
// KEYGATE_TEST_REQUIRE_ALL=1 every such skip is a failure instead.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by this package.
const (
	// EnvPostgres names a PostgreSQL server the tests must use.
	EnvPostgres = "KEYGATE_TEST_POSTGRES"
	// EnvRequireAll=1 turns every "component missing" skip into a failure.
	EnvRequireAll = "KEYGATE_TEST_REQUIRE_ALL"
)

const localPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// pg is the test process's PostgreSQL, resolved once, and skips the
// tests it skipped for want of a component. They are package-level: a
// process has exactly one such server and one end of run, and tests reach
// them through PostgresURL(t) and RequireOrSkip(t) without threading a
// handle.
var (
	pg    postgresState
	skips skipLog
)

type postgresState struct {
	once sync.Once
	mu   sync.Mutex
	url  string   // base URL/DSN of a reachable server
	skip string   // why none is available (skip unless REQUIRE_ALL)
	fail string   // KEYGATE_TEST_POSTGRES set but unusable
	c    *cluster // throwaway cluster we started, if any
}

func (p *postgresState) resolve() {
	p.once.Do(func() {
		if env := os.Getenv(EnvPostgres); env != "" {
			if err := probe(env, 10*time.Second); err != nil {
				p.fail = fmt.Sprintf("%s is set but PostgreSQL does not answer: %v", EnvPostgres, err)
				return
			}
			p.url = env
			return
		}
		localErr := probe(localPostgresURL, time.Second)
		if localErr == nil {
			p.url = localPostgresURL
			return
		}
		c, err := startCluster()
		if err != nil {
			p.skip = fmt.Sprintf("no PostgreSQL on 127.0.0.1:5432 (%v) and no throwaway cluster (%v); set %s",
				localErr, err, EnvPostgres)
			return
		}
		p.mu.Lock()
		p.c = c
		p.mu.Unlock()
		p.url = c.url
	})
}

func (p *postgresState) stop() {
	p.mu.Lock()
	c := p.c
	p.c = nil
	p.mu.Unlock()
	if c != nil {
		c.stop()
	}
}

// Main runs the tests of a package, stops the throwaway PostgreSQL
// cluster, if one was started, before the process exits, and ends with a
// summary of the tests that skipped for want of a real component. Use it
// as
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
// Without it the watchdog still stops the cluster a second after exit,
// and skips are reported one by one on stderr.
func Main(m *testing.M) {
	skips.start()
	code := m.Run()
	pg.stop()
	skips.report(code)
	os.Exit(code)
}

// RequireOrSkip skips t because component is missing, saying so loudly,
// or fails it when KEYGATE_TEST_REQUIRE_ALL=1. Tests needing Chromium,
// Hydra, Mailpit, nginx or wrk use it the same way.
func RequireOrSkip(t testing.TB, component, why string) {
	t.Helper()
	msg := fmt.Sprintf("%s NOT AVAILABLE: %s", strings.ToUpper(component), why)
	if os.Getenv(EnvRequireAll) == "1" {
		t.Fatalf("%s (%s=1 forbids skipping)", msg, EnvRequireAll)
	}
	skips.add(t.Name(), msg)
	t.Skipf("SKIPPED: %s (set %s=1 to make this a failure)", msg, EnvRequireAll)
}

// PostgresURL returns a URL (or keyword DSN, if KEYGATE_TEST_POSTGRES is
// one) whose search_path is a fresh, empty schema kg_<random>, dropped
// when t ends. Tests therefore never see each other's tables.
func PostgresURL(t testing.TB) string {
	t.Helper()
	pg.resolve()
	switch {
	case pg.fail != "":
		t.Fatal(pg.fail)
	case pg.skip != "":
		RequireOrSkip(t, "PostgreSQL", pg.skip)
	}
	schema := "kg_" + randomHex(t, 8)
	if err := execOnce(pg.url, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("dbtest: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if err := execOnce(pg.url, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Logf("dbtest: drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(pg.url, schema)
}

// SQLitePath returns a database file path in t's temp dir.
func SQLitePath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "keygate.db")
}

func withSearchPath(base, schema string) string {
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	// Keyword DSN: a later key overrides an earlier one.
	return base + " search_path=" + schema
}

// probe connects and runs SELECT 1 within timeout.
func probe(dsn string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

func execOnce(dsn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("dbtest: random: %v", err)
	}
	return hex.EncodeToString(b)
}
