package dbtest

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PostgresDatabase creates a fresh PostgreSQL database, a copy of template
// when template is not empty (see EnsureTemplate), and returns its URL (or
// keyword DSN). The database is dropped when t ends. Use it where a test
// needs a whole database rather than a schema: software such as LiteLLM
// creates its tables in "public".
func PostgresDatabase(t testing.TB, template string) string {
	t.Helper()
	base := postgresBase(t)
	name := "kgdb_" + randomHex(t, 8)
	sql := "CREATE DATABASE " + name
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	// A template cannot be copied while another session is connected to
	// it; that only happens for the moment another process builds or
	// checks one, so retry briefly.
	var err error
	for range 50 {
		if err = execOnce(base, sql); err == nil || !isInUse(err) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("dbtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := execOnce(base, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dbtest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(base, name)
}

// EnsureTemplate makes sure the database name exists, building it with
// build (given the new database's URL) when it does not. Building happens
// under an advisory lock and is published by a rename, so concurrent test
// processes build it once and never see it half-built. name should change
// whenever what build creates changes (e.g. carry a content hash); a
// template is kept between runs, which is the point of it.
func EnsureTemplate(t testing.TB, name string, build func(url string) error) {
	t.Helper()
	base := postgresBase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	exists := func() bool {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok); err != nil {
			t.Fatalf("dbtest: look for database %s: %v", name, err)
		}
		return ok
	}
	if exists() {
		return
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext($1))", "dbtest-template:"+name); err != nil {
		t.Fatalf("dbtest: lock: %v", err)
	}
	defer func() {
		_, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock(hashtext($1))", "dbtest-template:"+name)
	}()
	if exists() {
		return
	}
	tmp := "kgtpl_" + randomHex(t, 8)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+tmp); err != nil {
		t.Fatalf("dbtest: create database %s: %v", tmp, err)
	}
	if err := build(withDatabase(base, tmp)); err != nil {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+tmp+" WITH (FORCE)")
		t.Fatalf("dbtest: build template %s: %v", name, err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+tmp+" RENAME TO "+pgx.Identifier{name}.Sanitize()); err != nil {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+tmp+" WITH (FORCE)")
		t.Fatalf("dbtest: publish template %s: %v", name, err)
	}
}

// postgresBase resolves the test process's PostgreSQL (as PostgresURL
// does) and returns its base URL.
func postgresBase(t testing.TB) string {
	t.Helper()
	pg.resolve()
	switch {
	case pg.fail != "":
		t.Fatal(pg.fail)
	case pg.skip != "":
		RequireOrSkip(t, "PostgreSQL", pg.skip)
	}
	return pg.url
}

// withDatabase returns base pointing at database name.
func withDatabase(base, name string) string {
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		if u, err := url.Parse(base); err == nil {
			u.Path = "/" + name
			q := u.Query()
			q.Del("search_path")
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	// Keyword DSN: a later key overrides an earlier one.
	return base + " dbname=" + name
}

// isInUse reports PostgreSQL's "source database is being accessed by
// other users" (55006, object_in_use).
func isInUse(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55006"
}
