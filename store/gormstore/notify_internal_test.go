package gormstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/internal/testutil/syncbuf"
	"github.com/keygate/keygate/store"
)

// TestListenerReconnectsAsSoonAsTheDatabaseIsBack: after the database was
// down long enough for the listener's backoff to grow, it must not wait
// out that backoff once the database answers again — invalidations from
// other replicas are lost meanwhile — but reconnect (and tell the caller
// to drop its cache) as soon as this replica's own pool reaches the
// database. The backoff is stretched to an hour, so only that can do it.
func TestListenerReconnectsAsSoonAsTheDatabaseIsBack(t *testing.T) {
	c := dbtest.NewCluster(t)
	logs := &syncbuf.Buffer{}
	s, err := Open(context.Background(), Options{DatabaseURL: c.URL(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	defer s.Close()
	s.listenPause = [2]time.Duration{time.Hour, time.Hour}

	got, stop := listenSubscribed(t, s, "kg_reconnect")
	defer stop()

	c.Stop()
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "lost its connection") || strings.Contains(logs.String(), "cannot connect")
	}, 30*time.Second, 10*time.Millisecond, "the listener notices")
	c.Start()
	require.Eventually(t, func() bool { return s.Ping(context.Background()) == nil }, 30*time.Second, 50*time.Millisecond)
	waitResetAll(t, got, 60*time.Second, "no reconnect after the database came back (backoff is an hour)", logs)
}

// listenSubscribed runs s.Listen on channel until stop is called and
// waits until it hears its own notifications; got receives payloads.
func listenSubscribed(t *testing.T, s *Store, channel string) (got <-chan string, stop func()) {
	t.Helper()
	ch := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Listen(ctx, channel, func(p string) { ch <- p }) }()
	require.Eventually(t, func() bool {
		_ = s.Notify(context.Background(), channel, "hello")
		select {
		case p := <-ch:
			return p == "hello"
		case <-time.After(50 * time.Millisecond):
			return false
		}
	}, 30*time.Second, 10*time.Millisecond, "the listener is subscribed")
	return ch, func() { cancel(); <-done }
}

// waitResetAll waits up to within for the listener to tell its caller to
// drop its cache (it reconnected), failing with why and the logs.
func waitResetAll(t *testing.T, got <-chan string, within time.Duration, why string, logs *syncbuf.Buffer) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case p := <-got:
			if p == ResetAll {
				return
			}
		case <-deadline:
			t.Fatalf("%s\n%s", why, logs.String())
		}
	}
}

// TestKeyLookupEndsTheListenersBackoff: a replica that serves only
// /auth/verify runs no statement but key lookups. When its listener lost
// its connection, a lookup that reaches the database must end the
// backoff too, or the replica serves cached answers while other
// replicas' invalidations go unheard (found by an outside attack: a key
// blocked on one replica stayed allowed on the other for up to 5 s).
func TestKeyLookupEndsTheListenersBackoff(t *testing.T) {
	app := fmt.Sprintf("kgtest_lookup_wake_%d", time.Now().UnixNano())
	logs := &syncbuf.Buffer{}
	s, err := Open(context.Background(), Options{DatabaseURL: dbtest.PostgresURL(t) + "&application_name=" + app,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	defer s.Close()
	s.listenPause = [2]time.Duration{time.Hour, time.Hour}
	now := time.Now().UTC()
	require.NoError(t, s.CreateUser(t.Context(), &store.User{ID: "u1", Email: "u1@example.com", Role: "internal_user", CreatedAt: now, UpdatedAt: now}))
	require.NoError(t, s.CreateKey(t.Context(), &store.Key{Hash: "h1", UserID: "u1", CreatedAt: now, UpdatedAt: now}))

	got, stop := listenSubscribed(t, s, "kg_lookup_wake")
	defer stop()

	// Every connection of this store, the listener's included, is cut.
	admin, err := Open(context.Background(), Options{DatabaseURL: dbtest.PostgresURL(t)})
	require.NoError(t, err)
	defer admin.Close()
	require.NoError(t, admin.db.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?", app).Error)
	require.Eventually(t, func() bool { return s.wake.down.Load() }, 30*time.Second, 10*time.Millisecond, "the listener notices")

	// Only key lookups from now on: the first may meet a cut connection.
	require.Eventually(t, func() bool {
		_, err := s.GetKeyAccess(context.Background(), "h1")
		return err == nil
	}, 30*time.Second, 10*time.Millisecond)
	waitResetAll(t, got, 10*time.Second, "a key lookup reached the database but the listener still waits out its hour", logs)
}
