package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

// The tests in this file take the database away from a running Keygate —
// a locked table, a frozen server, another process holding SQLite's write
// lock — and check that requests fail fast with 503 and the LiteLLM error
// body instead of hanging, and that Keygate recovers by itself.

// patience bounds how long a test waits for one answer. It is not what is
// asserted: Keygate's own bound (KEYGATE_DB_TIMEOUT, 2 s by default) is far
// below it, while the faults below last until the test ends them, so an
// unbounded wait shows up as this client timeout.
const patience = 45 * time.Second

// get sends GET path with token and returns the status and body.
func (k *keygate) get(path, token string) (int, string, error) {
	return k.send(http.MethodGet, path, token, nil)
}

// post sends POST path with token and a JSON body.
func (k *keygate) post(path, token string, body any) (int, string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, "", err
	}
	return k.send(http.MethodPost, path, token, b)
}

// send makes one request, bounded by patience; a body goes as JSON.
func (k *keygate) send(method, path, token string, body []byte) (int, string, error) {
	req, err := http.NewRequest(method, k.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: patience}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out), err
}

// requireUnavailable asserts a 503 in LiteLLM's error shape.
func requireUnavailable(t *testing.T, code int, body string, err error) {
	t.Helper()
	require.NoError(t, err, "the request must end (fail fast), not hang")
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	var e struct {
		Error struct {
			Message, Type, Param, Code string
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	require.Equal(t, "503", e.Error.Code, body)
	require.NotEmpty(t, e.Error.Message, body)
}

// pgKeygate runs Keygate over a schema of the test's own cluster and
// returns it with two fresh keys nobody has verified yet (cache misses).
func pgKeygate(t *testing.T) (*dbtest.Cluster, string, *keygate, []string) {
	c := dbtest.NewCluster(t)
	url := c.URL()
	k := startKeygate(t, openStore(t, url))
	var keys []string
	for _, u := range []string{"alice", "bob", "carol"} {
		keys = append(keys, k.newUser(u, "gpt-4o"))
	}
	return c, url, k, keys
}

// TestLockedTableFailsFast: while another session holds an exclusive lock
// on the keys and users tables, an uncached /auth/verify and /user/list
// answer 503 promptly; once the lock is gone they work again.
func TestLockedTableFailsFast(t *testing.T) {
	_, url, k, keys := pgKeygate(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "LOCK TABLE users, api_keys IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)

	code, body, err := k.get("/auth/verify", keys[0])
	requireUnavailable(t, code, body, err)
	code, body, err = k.get("/user/list", masterKey)
	requireUnavailable(t, code, body, err)

	require.NoError(t, tx.Rollback(ctx))
	code, body, err = k.get("/auth/verify", keys[0])
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)
	code, body, err = k.get("/user/list", masterKey)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)
}

// TestFrozenDatabaseFailsFast: with every PostgreSQL process stopped
// (SIGSTOP: connections open, nothing answers), a burst of uncached
// requests and writes — more than the pool holds — all answer 503 instead
// of hanging or exhausting the pool (a write cut short by our own bound
// once answered 499, "client closed", to a client still waiting); after
// SIGCONT everything recovers by itself.
func TestFrozenDatabaseFailsFast(t *testing.T) {
	c, _, k, keys := pgKeygate(t)
	c.Freeze()
	thawed := false
	defer func() {
		if !thawed {
			c.Thaw()
		}
	}()

	const burst = 30 // > the default pool of 10
	var wg sync.WaitGroup
	type answer struct {
		code int
		body string
		err  error
	}
	answers := make(chan answer, burst)
	for i := range burst {
		wg.Go(func() {
			var (
				code int
				body string
				err  error
			)
			switch i % 3 {
			case 0:
				code, body, err = k.get("/auth/verify", keys[i%len(keys)])
			case 1:
				code, body, err = k.get("/user/list", masterKey)
			default:
				code, body, err = k.post("/user/update", masterKey, map[string]any{"user_id": "alice", "max_budget": float64(i)})
			}
			answers <- answer{code, body, err}
		})
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		requireUnavailable(t, a.code, a.body, a.err)
	}
	code, body, err := k.get("/health/readiness", "")
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, code, body)

	c.Thaw()
	thawed = true
	require.Eventually(t, func() bool {
		code, _, err := k.get("/health/readiness", "")
		return err == nil && code == http.StatusOK
	}, patience, 50*time.Millisecond, "readiness recovers by itself")
	code, body, err = k.get("/auth/verify", keys[1])
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)
	code, body, err = k.get("/user/list", masterKey)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)
}

// TestSQLiteForeignWriteLockDoesNotStallReads: another process (here a
// second connection) holds SQLite's write lock. A write that must wait
// for it does not stall reads behind it, and with the default timeout the
// write itself answers 503 instead of waiting on.
func TestSQLiteForeignWriteLockDoesNotStallReads(t *testing.T) {
	path := dbtest.SQLitePath(t)
	st, err := gormstore.Open(context.Background(), gormstore.Options{SQLitePath: path, Logger: quietLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	k := startKeygate(t, st)
	keys := []string{k.newUser("alice", "gpt-4o"), k.newUser("bob", "gpt-4o")}

	other, err := gormstore.Open(context.Background(), gormstore.Options{SQLitePath: path, Logger: quietLogger()})
	require.NoError(t, err)
	defer other.Close()
	locked, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	unlock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unlock()
	go func() {
		_ = other.Tx(context.Background(), func(tx store.Store) error {
			now := time.Now().UTC()
			if err := tx.CreateTeam(context.Background(), &store.Team{ID: "lock-holder", CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked

	// A write waits for the lock; it fails fast with 503.
	wrote := make(chan struct {
		code int
		body string
		err  error
	}, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, k.srv.URL+"/team/new", strings.NewReader(`{"team_id":"blocked-write"}`))
		req.Header.Set("Authorization", "Bearer "+masterKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Timeout: patience}).Do(req)
		if err != nil {
			wrote <- struct {
				code int
				body string
				err  error
			}{0, "", err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wrote <- struct {
			code int
			body string
			err  error
		}{resp.StatusCode, string(b), nil}
	}()
	time.Sleep(100 * time.Millisecond) // let the write reach the database first

	// Reads are not queued behind it.
	code, body, err := k.get("/auth/verify", keys[1])
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)
	code, body, err = k.get("/user/list", masterKey)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)
	select {
	case w := <-wrote:
		// The write may legitimately have given up by now on a slow
		// machine; it must then have done so with a 503.
		requireUnavailable(t, w.code, w.body, w.err)
	default:
	}

	w := <-wrote
	requireUnavailable(t, w.code, w.body, w.err)
	unlock()
	require.Eventually(t, func() bool {
		_, _, err := k.get("/health/readiness", "")
		return err == nil
	}, patience, 50*time.Millisecond)
	m := k.admin("/team/new", map[string]any{"team_id": "after-unlock"})
	require.Equal(t, "after-unlock", m["team_id"])
}
