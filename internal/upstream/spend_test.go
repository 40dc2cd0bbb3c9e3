package upstream_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// drain stops the proxy's server and waits for every spend entry.
func (e *env) drain() {
	e.t.Helper()
	e.srv.Close()
	require.NoError(e.t, e.px.Close(context.Background()))
}

func TestConcurrentRequestsEachRecordedOnce(t *testing.T) {
	e := newEnv(t, envConfig{})
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, err := e.client.Chat.Completions.New(context.Background(), chatParams("gpt-test"))
				errs <- err
				return
			}
			s := e.client.Chat.Completions.NewStreaming(context.Background(), chatParams("gpt-test"))
			for s.Next() {
			}
			errs <- s.Err()
			_ = s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	e.drain()

	es := e.spendOf(e.keyHash)
	require.Len(t, es, n)
	ids := map[string]bool{}
	for _, s := range es {
		require.False(t, ids[s.RequestID], "request id %s recorded twice", s.RequestID)
		ids[s.RequestID] = true
	}
	want := n/2*cost("gpt-test", chatPrompt, chatCompletion) + n/2*cost("gpt-test", streamPrompt, streamCompletion)
	u, err := e.st.GetUser(context.Background(), e.userID)
	require.NoError(t, err)
	require.InDelta(t, want, u.Spend, 1e-9, "running totals add up")
	k, err := e.st.GetKey(context.Background(), e.keyHash)
	require.NoError(t, err)
	require.InDelta(t, want, k.Spend, 1e-9)
}

func TestReusedResponseIDStillRecorded(t *testing.T) {
	// An upstream that repeats its response ids must not make later
	// answers free: each is recorded, the repeats under a derived id.
	e := newEnv(t, envConfig{})
	e.up.setMode("fixed-id")
	for range 3 {
		_, err := e.client.Chat.Completions.New(context.Background(), chatParams("gpt-test"))
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.client.Chat.Completions.New(context.Background(), chatParams("gpt-test"))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	e.drain()
	es := e.spendOf(e.keyHash)
	require.Len(t, es, 7)
	for _, s := range es {
		require.True(t, strings.HasPrefix(s.RequestID, "chatcmpl-fixed"), s.RequestID)
	}
}
