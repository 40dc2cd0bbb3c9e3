package upstream_test

import (
	"context"
	"log/slog"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/internal/upstream"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

// waitLong bounds waits for the backlog to be replayed once the database
// is back. It is a bound on a wait, not a speed assertion.
const waitLong = 60 * time.Second

// TestSpendSpooledDuringOutage: with PostgreSQL stopped mid-traffic, keys
// still in the cache are served; their spend is kept on disk and, once
// the database is back, every served request's cost is in it, once.
func TestSpendSpooledDuringOutage(t *testing.T) {
	c := dbtest.NewCluster(t)
	dir := t.TempDir()
	e := newEnv(t, envConfig{databaseURL: c.URL(), keepCache: true, options: func(o *upstream.Options) { o.SpoolDir = dir }})
	ctx := context.Background()
	_, err := e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
	require.NoError(t, err)
	e.waitSpent(1) // the key is cached, one request recorded

	c.Stop()
	const served = 20
	for range served {
		_, err := e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
		require.NoError(t, err, "a cached key is served while the database is down")
	}
	// The outage outlasts any retrying: what is not kept now is lost.
	time.Sleep(3 * time.Second)
	c.Start()

	require.Eventually(t, func() bool {
		_, n, err := e.st.ListSpend(ctx, store.SpendFilter{KeyHash: e.keyHash})
		return err == nil && n >= 1+served
	}, waitLong, 100*time.Millisecond, "the spooled spend reaches the database\n%s", e.logs.String())
	e.drain()
	es := e.spendOf(e.keyHash)
	require.Len(t, es, 1+served, "every request once")
	k, err := e.st.GetKey(ctx, e.keyHash)
	require.NoError(t, err)
	require.InDelta(t, float64(1+served)*cost("gpt-test", chatPrompt, chatCompletion), k.Spend, 1e-12)
	u, err := e.st.GetUser(ctx, e.userID)
	require.NoError(t, err)
	require.InDelta(t, k.Spend, u.Spend, 1e-12)
	left, _ := filepath.Glob(filepath.Join(dir, "spend-spool", "*.jsonl"))
	require.Empty(t, left, "the spool is emptied once replayed")
}

// TestFailClosedRefusesWhileSpendCannotBeRecorded: with the fail-closed
// setting, once a write has failed, requests naming a model get 503 until
// the database is back and the backlog replayed; every request served is
// billed once.
func TestFailClosedRefusesWhileSpendCannotBeRecorded(t *testing.T) {
	c := dbtest.NewCluster(t)
	e := newEnv(t, envConfig{databaseURL: c.URL(), keepCache: true, options: func(o *upstream.Options) {
		o.SpoolDir, o.FailClosed = t.TempDir(), true
	}})
	ctx := context.Background()
	body := `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	ok := 0
	call := func() int {
		resp := e.post(ctx, "/v1/chat/completions", e.key, body, nil)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ok++
		}
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, call())
	e.waitSpent(1)

	c.Stop()
	require.Eventually(t, func() bool { return call() == http.StatusServiceUnavailable }, waitLong, 20*time.Millisecond,
		"metered requests are refused once spend cannot be written")
	require.Equal(t, http.StatusServiceUnavailable, call())
	c.Start()
	require.Eventually(t, func() bool { return call() == http.StatusOK }, waitLong, 50*time.Millisecond, "served again once recorded")
	e.drain()
	require.Len(t, e.spendOf(e.keyHash), ok, "every request served is billed, once")
}

// TestSpoolSurvivesRestart: Keygate stops while the database is down; the
// spend it spooled is recorded by the next process once the database is
// back.
func TestSpoolSurvivesRestart(t *testing.T) {
	c := dbtest.NewCluster(t)
	dir := t.TempDir()
	url := c.URL()
	e := newEnv(t, envConfig{databaseURL: url, keepCache: true, options: func(o *upstream.Options) { o.SpoolDir = dir }})
	ctx := context.Background()
	_, err := e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
	require.NoError(t, err)
	e.waitSpent(1)
	c.Stop()
	for range 5 {
		_, err := e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
		require.NoError(t, err)
	}
	e.close() // the process ends with the database still down
	segs, _ := filepath.Glob(filepath.Join(dir, "spend-spool", "*.jsonl"))
	require.NotEmpty(t, segs, "spend is on disk")
	for _, s := range segs {
		fi, err := os.Stat(s)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	}

	c.Start()
	st, err := gormstore.Open(ctx, gormstore.Options{DatabaseURL: url})
	require.NoError(t, err)
	defer st.Close()
	target, err := neturl.Parse("http://127.0.0.1:1")
	require.NoError(t, err)
	px, err := upstream.New(upstream.Options{Target: target, Authenticator: auth.Chain{}, Decide: service.Decide,
		Spend: st, SpoolDir: dir, Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, n, err := st.ListSpend(ctx, store.SpendFilter{KeyHash: e.keyHash})
		return err == nil && n == 6
	}, waitLong, 100*time.Millisecond, "the next process replays the spool\n%s", e.logs.String())
	require.NoError(t, px.Close(ctx))
	_, n, err := st.ListSpend(ctx, store.SpendFilter{KeyHash: e.keyHash})
	require.NoError(t, err)
	require.EqualValues(t, 6, n)
	k, err := st.GetKey(ctx, e.keyHash)
	require.NoError(t, err)
	require.InDelta(t, 6*cost("gpt-test", chatPrompt, chatCompletion), k.Spend, 1e-12)
}
