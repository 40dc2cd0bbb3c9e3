package upstream_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/upstream"
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

// TestStreamAbandonedBeforeUsageIsBilled: a client that reads the content
// and leaves before the usage chunk is billed an estimate of what it got,
// not nothing (else abandoning every stream makes calls free and budgets
// never fill).
func TestStreamAbandonedBeforeUsageIsBilled(t *testing.T) {
	e := newEnv(t, envConfig{})
	gate := make(chan struct{})
	e.up.setGate(gate)
	defer close(gate)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	stream := e.client.Chat.Completions.NewStreaming(ctx, chatParams("gpt-test"))
	require.True(t, stream.Next(), "first chunk: %v", stream.Err())
	require.NoError(t, stream.Close(), "the client leaves while the upstream holds the rest")
	cancel()

	e.waitSpent(1)
	es := e.spendOf(e.keyHash)
	require.Len(t, es, 1)
	require.Positive(t, es[0].PromptTokens, "the prompt is estimated from the request body")
	require.Positive(t, es[0].CompletionTokens, "one token per relayed event")
	require.InDelta(t, cost("gpt-test", es[0].PromptTokens, es[0].CompletionTokens), es[0].Spend, 1e-12)
	require.Positive(t, es[0].Spend)
}

// TestClientGoneBeforeTheAnswerIsBilled: a client that leaves while the
// upstream is still working is billed the call's estimate (the upstream
// had the request), not nothing.
func TestClientGoneBeforeTheAnswerIsBilled(t *testing.T) {
	e := newEnv(t, envConfig{options: func(o *upstream.Options) { o.EstimateMaxTokens = 500 }})
	e.up.setMode("hang")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
	require.Error(t, err)

	e.waitSpent(1)
	es := e.spendOf(e.keyHash)
	require.Len(t, es, 1)
	require.EqualValues(t, 500, es[0].CompletionTokens, "the output bound the reservation used")
	require.Positive(t, es[0].PromptTokens)
	require.InDelta(t, cost("gpt-test", es[0].PromptTokens, es[0].CompletionTokens), es[0].Spend, 1e-12)
}
