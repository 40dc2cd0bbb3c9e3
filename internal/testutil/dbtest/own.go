package dbtest

import (
	"syscall"
	"testing"
)

// Cluster is a PostgreSQL server of the test's own, for tests that take
// the database away: stop and restart it, or freeze it (SIGSTOP) as a hung
// server would be. Never the shared server on 5432.
type Cluster struct {
	t testing.TB
	c *cluster
}

// NewCluster starts a throwaway cluster (initdb -A trust + pg_ctl on a
// free port, as the postgres user when run as root) and removes it when
// t ends. It skips (or fails, with KEYGATE_TEST_REQUIRE_ALL=1) when no
// server binaries are installed.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := startCluster()
	if err != nil {
		RequireOrSkip(t, "PostgreSQL server binaries", err.Error())
	}
	cl := &Cluster{t: t, c: c}
	t.Cleanup(func() {
		_ = c.signalAll(syscall.SIGCONT) // a frozen server cannot stop
		c.stop()
	})
	return cl
}

// URL is the cluster's postgres database, as a URL with a fresh schema in
// its search_path (like PostgresURL).
func (c *Cluster) URL() string {
	c.t.Helper()
	schema := "kg_" + randomHex(c.t, 8)
	if err := execOnce(c.c.url, "CREATE SCHEMA "+schema); err != nil {
		c.t.Fatalf("dbtest: create schema: %v", err)
	}
	return withSearchPath(c.c.url, schema)
}

// BaseURL is the cluster's postgres database without a search_path.
func (c *Cluster) BaseURL() string { return c.c.url }

// Stop shuts the server down (fast: sessions are disconnected); Start
// brings it back on the same port with the same data.
func (c *Cluster) Stop() {
	c.t.Helper()
	if err := c.c.pgCtlStop(); err != nil {
		c.t.Fatalf("dbtest: %v", err)
	}
}

// Start starts a stopped cluster again.
func (c *Cluster) Start() {
	c.t.Helper()
	if err := c.c.start(); err != nil {
		c.t.Fatalf("dbtest: %v", err)
	}
}

// Freeze stops every server process with SIGSTOP: connections stay open
// and nothing answers, as with a hung host. Thaw resumes them.
func (c *Cluster) Freeze() {
	c.t.Helper()
	if err := c.c.signalAll(syscall.SIGSTOP); err != nil {
		c.t.Fatalf("dbtest: freeze: %v", err)
	}
}

// Thaw resumes a frozen cluster.
func (c *Cluster) Thaw() {
	c.t.Helper()
	if err := c.c.signalAll(syscall.SIGCONT); err != nil {
		c.t.Fatalf("dbtest: thaw: %v", err)
	}
}
