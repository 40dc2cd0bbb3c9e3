package gormstore

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/internal/testutil/syncbuf"
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

	got := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Listen(ctx, "kg_reconnect", func(p string) { got <- p }) }()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool {
		_ = s.Notify(context.Background(), "kg_reconnect", "hello")
		select {
		case p := <-got:
			return p == "hello"
		case <-time.After(50 * time.Millisecond):
			return false
		}
	}, 30*time.Second, 10*time.Millisecond, "the listener is subscribed")

	c.Stop()
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "lost its connection") || strings.Contains(logs.String(), "cannot connect")
	}, 30*time.Second, 10*time.Millisecond, "the listener notices")
	c.Start()
	require.Eventually(t, func() bool { return s.Ping(context.Background()) == nil }, 30*time.Second, 50*time.Millisecond)
	for {
		select {
		case p := <-got:
			if p == ResetAll {
				return
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("no reconnect after the database came back (backoff is an hour)\n%s", logs.String())
		}
	}
}
