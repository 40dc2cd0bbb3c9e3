package gormstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	neturl "net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/internal/testutil/faultproxy"
	"github.com/keygate/keygate/internal/testutil/syncbuf"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

// testChannel returns a channel name no other test (in any package on the
// same server) uses: channels are database-wide, not per schema. Upper
// case letters check that LISTEN and pg_notify agree on case.
func testChannel(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "KgTest_" + hex.EncodeToString(b)
}

// listener runs Listen in a goroutine and collects payloads; it returns
// once Listen has said it is subscribed (ResetAll).
type listener struct {
	got    chan string
	done   chan error
	cancel context.CancelFunc
}

func startListener(t *testing.T, s *gormstore.Store, channel string) *listener {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	l := &listener{got: make(chan string, 64), done: make(chan error, 1), cancel: cancel}
	go func() { l.done <- s.Listen(ctx, channel, func(p string) { l.got <- p }) }()
	t.Cleanup(func() {
		cancel()
		<-l.done
	})
	require.Equal(t, gormstore.ResetAll, l.next(t, 10*time.Second), "the first thing a listener says is that it subscribed")
	return l
}

// next waits for one payload.
func (l *listener) next(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case p := <-l.got:
		return p
	case err := <-l.done:
		t.Fatalf("Listen returned early: %v", err)
	case <-time.After(within):
		t.Fatalf("no notification within %s", within)
	}
	return ""
}

func (l *listener) requireNothing(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case p := <-l.got:
		t.Fatalf("unexpected notification %q", p)
	case <-time.After(wait):
	}
}

// stop cancels Listen and checks it returns nil promptly.
func (l *listener) stop(t *testing.T) {
	t.Helper()
	l.cancel()
	select {
	case err := <-l.done:
		require.NoError(t, err)
		l.done <- nil // for the cleanup
	case <-time.After(3 * time.Second):
		t.Fatal("Listen did not return after cancel")
	}
}

// listenerPID waits until a backend has finished LISTEN on channel (and
// is idle, waiting) and returns its pid. Until then a NOTIFY could be
// missed, so tests wait for this before notifying.
func listenerPID(t *testing.T, s *gormstore.Store, channel string, not int) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		err := s.DB().QueryRowContext(t.Context(),
			`SELECT pid FROM pg_stat_activity WHERE query = $1 AND state = 'idle' AND pid <> $2`,
			`LISTEN "`+channel+`"`, not).Scan(&pid)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond, "listener never subscribed")
	return pid
}

func TestPostgresNotifyListen(t *testing.T) {
	url := dbtest.PostgresURL(t)
	a := openT(t, gormstore.Options{DatabaseURL: url})
	b := openT(t, gormstore.Options{DatabaseURL: url})
	ctx := t.Context()
	ch := testChannel(t)
	// Warm both pools first: database/sql starts its cleaner goroutine
	// lazily, which must not count as a leak.
	require.NoError(t, a.Notify(ctx, ch, "warm-up"))
	require.NoError(t, b.Notify(ctx, ch, "warm-up"))
	before := settledGoroutines()

	l := startListener(t, a, ch)
	listenerPID(t, b, ch, 0)
	require.Greater(t, runtime.NumGoroutine(), before, "the leak check below can see Listen")

	require.NoError(t, b.Notify(ctx, ch, "key:abc"))
	require.Equal(t, "key:abc", l.next(t, time.Second), "a Notify on one store reaches a Listen on another")
	require.NoError(t, a.Notify(ctx, ch, "user:u1"))
	require.Equal(t, "user:u1", l.next(t, time.Second), "and on the same store")

	// Other channels are not delivered.
	require.NoError(t, b.Notify(ctx, testChannel(t), "elsewhere"))

	// Inside a transaction the notification waits for the commit and is
	// dropped on rollback.
	errRollback := errors.New("roll back")
	err := b.Tx(ctx, func(tx store.Store) error {
		require.NoError(t, tx.(*gormstore.Store).Notify(ctx, ch, "rolled-back"))
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	err = b.Tx(ctx, func(tx store.Store) error {
		require.NoError(t, tx.(*gormstore.Store).Notify(ctx, ch, "committed"))
		l.requireNothing(t, 200*time.Millisecond)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, "committed", l.next(t, time.Second))

	// The largest payload passes; one byte more is refused before it
	// reaches the server.
	big := strings.Repeat("x", gormstore.MaxNotifyPayload)
	require.NoError(t, b.Notify(ctx, ch, big))
	require.Equal(t, big, l.next(t, time.Second))
	require.Error(t, b.Notify(ctx, ch, big+"x"))
	l.requireNothing(t, 100*time.Millisecond)

	l.stop(t)
	requireGoroutinesAtMost(t, before)
	require.Eventually(t, func() bool {
		var n int
		err := b.DB().QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query = $1`, `LISTEN "`+ch+`"`).Scan(&n)
		return err == nil && n == 0
	}, 5*time.Second, 20*time.Millisecond, "the listener's connection is closed")
}

func TestPostgresListenReconnects(t *testing.T) {
	url := dbtest.PostgresURL(t)
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := openT(t, gormstore.Options{DatabaseURL: url, Logger: log})
	b := openT(t, gormstore.Options{DatabaseURL: url})
	ctx := t.Context()
	ch := testChannel(t)

	l := startListener(t, a, ch)
	pid := listenerPID(t, b, ch, 0)
	require.NoError(t, b.Notify(ctx, ch, "before"))
	require.Equal(t, "before", l.next(t, time.Second))

	for round := range 2 {
		var killed bool
		require.NoError(t, b.DB().QueryRowContext(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&killed))
		require.True(t, killed)
		require.Equal(t, gormstore.Unheard, l.next(t, 5*time.Second), "round %d: the caller is told notifications are lost", round)
		require.Equal(t, gormstore.ResetAll, l.next(t, 5*time.Second),
			"round %d: after reconnecting the caller is told to drop its cache", round)
		pid = listenerPID(t, b, ch, pid)
		require.NoError(t, b.Notify(ctx, ch, "after"))
		require.Equal(t, "after", l.next(t, time.Second), "round %d: notifications flow again", round)
	}
	l.requireNothing(t, 100*time.Millisecond)
	l.stop(t)

	out := logs.String()
	require.Contains(t, out, "notification listener lost its connection")
	require.Contains(t, out, "notification listener reconnected")
}

// A listener whose server goes away keeps retrying (logging each failed
// attempt) until the server is back, then resumes with ResetAll; cancel
// during the backoff ends it.
func TestPostgresListenServerDown(t *testing.T) {
	url := dbtest.PostgresURL(t)
	p, purl := startProxy(t, url)
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a := openT(t, gormstore.Options{DatabaseURL: purl})
	b := openT(t, gormstore.Options{DatabaseURL: url})
	ctx := t.Context()
	ch := testChannel(t)

	// Logger only on the listener side: a store on the proxy with a
	// logger would log its own pool's failures too.
	la := openT(t, gormstore.Options{DatabaseURL: purl, Logger: log})
	l := startListener(t, la, ch)
	pid := listenerPID(t, b, ch, 0)
	require.NoError(t, a.Notify(ctx, ch, "via proxy"))
	require.Equal(t, "via proxy", l.next(t, time.Second))

	p.SetDown(true)
	require.Equal(t, gormstore.Unheard, l.next(t, 10*time.Second))
	require.Eventually(t, func() bool { return strings.Count(logs.String(), "cannot connect") >= 3 },
		10*time.Second, 20*time.Millisecond, "failed attempts are retried and logged")
	l.requireNothing(t, 0)
	p.SetDown(false)
	require.Equal(t, gormstore.ResetAll, l.next(t, 10*time.Second))
	listenerPID(t, b, ch, pid)
	require.NoError(t, b.Notify(ctx, ch, "back"))
	require.Equal(t, "back", l.next(t, time.Second))
	require.NotContains(t, logs.String(), "hunter2", "logs never show the DSN's password")

	// Cancel while waiting out a backoff.
	p.SetDown(true)
	require.Eventually(t, func() bool { return strings.Count(logs.String(), "lost its connection") >= 2 },
		10*time.Second, 20*time.Millisecond)
	l.stop(t)
}

// startProxy puts a faultproxy between a store and PostgreSQL; the URL
// through it carries a password (the test server trusts loopback, so any
// works) for the tests to check that logs never show it.
func startProxy(t *testing.T, dbURL string) (*faultproxy.Proxy, string) {
	t.Helper()
	p, u := faultproxy.StartForURL(t, dbURL)
	if _, set := u.User.Password(); !set && u.User != nil {
		u.User = neturl.UserPassword(u.User.Username(), "hunter2")
	}
	return p, u.String()
}

func TestSQLiteNotifyListen(t *testing.T) {
	s := openT(t, gormstore.Options{SQLitePath: dbtest.SQLitePath(t)})
	ctx := t.Context()
	require.NoError(t, s.Notify(ctx, "keygate_cache", "key:abc"), "SQLite: a no-op")
	require.Error(t, s.Notify(ctx, "keygate_cache", strings.Repeat("x", gormstore.MaxNotifyPayload+1)))

	lctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	got := make(chan string, 4)
	go func() { done <- s.Listen(lctx, "keygate_cache", func(p string) { got <- p }) }()
	select {
	case p := <-got:
		require.Equal(t, gormstore.ResetAll, p, "a single instance misses nothing: its cache may be trusted at once")
	case <-time.After(5 * time.Second):
		t.Fatal("SQLite's Listen never said it was ready")
	}
	select {
	case err := <-done:
		t.Fatalf("Listen returned before cancel: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	require.Len(t, got, 0, "and nothing else")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Second):
		t.Fatal("Listen did not return after cancel")
	}
}

func TestChannelNames(t *testing.T) {
	s := openT(t, gormstore.Options{SQLitePath: dbtest.SQLitePath(t)})
	ctx := t.Context()
	for _, ok := range []string{"a", "keygate_cache", "Chan_1", "1x", strings.Repeat("c", 63)} {
		require.NoError(t, s.Notify(ctx, ok, ""), "%q", ok)
	}
	for _, bad := range []string{"", "a-b", "a b", `x";DROP TABLE users;--`, "é", "a.b", strings.Repeat("c", 64)} {
		require.Error(t, s.Notify(ctx, bad, ""), "%q", bad)
		require.Error(t, s.Listen(ctx, bad, func(string) {}), "%q: Listen refuses at once", bad)
	}
	require.Error(t, s.Listen(ctx, "ok", nil), "a nil callback is refused")
}

// requireGoroutinesAtMost waits for the goroutine count to drop to n. It
// polls in the test's own goroutine: require.Eventually runs its
// condition in an extra goroutine, which would be counted.
// settledGoroutines waits until the goroutine count holds still for
// 100 ms (earlier tests' stores may still be winding down) and returns it:
// the baseline a leak check compares against.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

func requireGoroutinesAtMost(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines leaked: %d, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestListenerNoticesLostNotifications: a link that keeps the connection
// healthy but loses notifications (a pooler that does not carry LISTEN, a
// middlebox) must not pass for alive. The listener proves delivery by
// notifying itself at its heartbeat: ListenAlive comes only when its probe
// comes back, and probes that do not come back count as a lost connection
// (seen failing: a ping kept answering, so ListenAlive kept coming while
// every notification was dropped).
func TestListenerNoticesLostNotifications(t *testing.T) {
	url := dbtest.PostgresURL(t)
	p, purl := startProxy(t, url)
	s := openT(t, gormstore.Options{DatabaseURL: purl, ListenHeartbeat: 100 * time.Millisecond})
	ch := testChannel(t)
	l := startListener(t, s, ch)
	alive := func(within time.Duration) bool {
		deadline := time.After(within)
		for {
			select {
			case got := <-l.got:
				if got == store.ListenAlive {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}
	require.True(t, alive(5*time.Second), "a healthy listener proves itself")

	p.SetDropNotifications(true)
	for len(l.got) > 0 {
		<-l.got
	}
	var seen []string
	deadline := time.After(10 * time.Second)
	for !slices.Contains(seen, gormstore.Unheard) {
		select {
		case got := <-l.got:
			require.NotEqual(t, store.ListenAlive, got, "alive while every notification is dropped")
			seen = append(seen, got)
		case <-deadline:
			t.Fatalf("lost notifications never counted as a lost connection; got %q", seen)
		}
	}
	p.SetDropNotifications(false)
	require.True(t, alive(10*time.Second), "alive again once notifications flow")
}
