package upstream_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/upstream"
	"github.com/keygate/keygate/store"
)

// deadAddress returns a loopback URL nobody listens on.
func deadAddress(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

func TestUpstreamDown(t *testing.T) {
	e := newEnv(t, envConfig{upstreamURL: deadAddress(t)})
	_, err := e.client.Chat.Completions.New(context.Background(), chatParams("gpt-test"))
	requireAPIError(t, err, http.StatusBadGateway, "upstream_error")

	stream := e.client.Chat.Completions.NewStreaming(context.Background(), chatParams("gpt-test"))
	require.False(t, stream.Next())
	requireAPIError(t, stream.Err(), http.StatusBadGateway, "upstream_error")
	require.NoError(t, stream.Close())

	e.srv.Close()
	require.NoError(t, e.px.Close(context.Background()))
	require.Empty(t, e.spendOf(e.keyHash), "nothing answered, nothing metered")
}

func TestUpstreamHanging(t *testing.T) {
	e := newEnv(t, envConfig{options: func(o *upstream.Options) { o.Timeout = 300 * time.Millisecond }})
	e.up.setMode("hang")
	start := time.Now()
	_, err := e.client.Chat.Completions.New(context.Background(), chatParams("gpt-test"))
	requireAPIError(t, err, http.StatusGatewayTimeout, "upstream_timeout")
	require.Less(t, time.Since(start), 4*time.Second)
	waitClosed(t, e.up.cancelled, 5*time.Second, "the upstream request to be abandoned after the timeout")
}

func TestClientDisconnectMidStreamCancelsUpstream(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.up.setMode("endless")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := e.post(ctx, "/v1/chat/completions", e.key, `{"model":"gpt-test","stream":true,"messages":[]}`, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	r := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ { // a few chunks have flowed
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if !strings.HasPrefix(line, "data: ") {
			i--
		}
	}
	cancel()
	_ = resp.Body.Close()
	waitClosed(t, e.up.cancelled, 5*time.Second, "the upstream handler to see its context end")

	e.srv.Close() // waits for the proxy's handler to return
	require.NoError(t, e.px.Close(context.Background()))
	es := e.spendOf(e.keyHash)
	require.Len(t, es, 1, "one entry, never two, for the cut stream")
	// The usage chunk never came: the entry holds the estimate (the body
	// at a token per four bytes, a token per event relayed), not zero.
	require.Positive(t, es[0].PromptTokens, "prompt estimated from the forwarded body")
	require.GreaterOrEqual(t, es[0].CompletionTokens, int64(3), "at least the events the client read")
	require.Positive(t, es[0].Spend)
}

func TestNoGoroutineLeak(t *testing.T) {
	before := settledGoroutines()
	func() {
		e := newEnv(t, envConfig{options: func(o *upstream.Options) { o.Timeout = 300 * time.Millisecond }})
		defer e.close()
		ctx := context.Background()
		_, err := e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
		require.NoError(t, err)
		stream := e.client.Chat.Completions.NewStreaming(ctx, chatParams("gpt-test"))
		for stream.Next() {
		}
		require.NoError(t, stream.Err())
		require.NoError(t, stream.Close())

		e.up.setMode("endless")
		cctx, cancel := context.WithCancel(ctx)
		resp := e.post(cctx, "/v1/chat/completions", e.key, `{"model":"gpt-test","stream":true}`, nil)
		_, err = bufio.NewReader(resp.Body).ReadString('\n')
		require.NoError(t, err)
		cancel()
		_ = resp.Body.Close()
		waitClosed(t, e.up.cancelled, 5*time.Second, "upstream cancellation")

		e.up.setMode("hang")
		_, err = e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
		requireAPIError(t, err, http.StatusGatewayTimeout, "upstream_timeout")
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRPMLimit(t *testing.T) {
	rpm := int64(2)
	e := newEnv(t, envConfig{key: func(k *store.Key) { k.RPMLimit = &rpm }})
	ctx := context.Background()
	for range 2 {
		_, err := e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
		require.NoError(t, err)
	}
	_, err := e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
	apiErr := requireAPIError(t, err, http.StatusTooManyRequests, "rate_limit_error")
	secs, convErr := strconv.Atoi(apiErr.Response.Header.Get("Retry-After"))
	require.NoError(t, convErr)
	require.GreaterOrEqual(t, secs, 1)
	require.LessOrEqual(t, secs, 30, "one request refills in 60/rpm s")
	require.Len(t, e.up.requests(), 2)

	other, _ := e.createKey(nil)
	_, err = e.sdk(other).Chat.Completions.New(ctx, chatParams("gpt-test"))
	require.NoError(t, err, "limits are per key")
}

func TestTPMLimit(t *testing.T) {
	tpm := int64(chatPrompt + chatCompletion - 1)
	e := newEnv(t, envConfig{key: func(k *store.Key) { k.TPMLimit = &tpm }})
	ctx := context.Background()
	_, err := e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
	require.NoError(t, err, "a positive bucket admits even a large answer")
	// The answer's tokens are charged once its body has been metered,
	// which may finish just after the client has read it.
	require.Eventually(t, func() bool {
		_, err := e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
		return err != nil
	}, 5*time.Second, 20*time.Millisecond)
	_, err = e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
	requireAPIError(t, err, http.StatusTooManyRequests, "rate_limit_error")
}

func TestMatches(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	px, err := upstream.New(upstream.Options{Target: u, Authenticator: auth.Chain{}, Decide: service.Decide, Spend: nopSpend{}})
	require.NoError(t, err)
	defer px.Close(context.Background())
	for path, want := range map[string]bool{
		"/v1/chat/completions": true, "/v1/models": true, "/chat/completions": true, "/completions": true,
		"/embeddings": true, "/models": true, "/models/gpt-4o": true, "/modelsx": false, "/key/generate": false,
		"/auth/verify": false, "/v1": false, "/ui/": false,
	} {
		require.Equal(t, want, px.Matches(path), path)
	}
}

func TestNewValidates(t *testing.T) {
	_, err := upstream.New(upstream.Options{})
	require.Error(t, err)
	for _, field := range []string{"Target", "Authenticator", "Decide", "Spend"} {
		require.Contains(t, err.Error(), field)
	}
}

// settledGoroutines waits (up to a second) for the goroutines of earlier
// tests to finish exiting, then counts.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 20 {
		time.Sleep(50 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	return n
}

// nopSpend is only for tests that never meter.
type nopSpend struct{}

func (nopSpend) RecordSpendBatch(_ context.Context, es []store.SpendEntry) ([]store.SpendEntry, error) {
	return es, nil
}
