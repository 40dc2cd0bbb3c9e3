package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

// gatedLLM streams chatChunks content chunks per chat completion, pausing
// after gateAfter of them until release is closed, then a usage chunk and
// [DONE].
type gatedLLM struct {
	release chan struct{}
	paused  chan string // receives the id of each stream when it pauses
	n       atomic.Int64
}

const (
	chatChunks = 20
	gateAfter  = 5
	outTokens  = 20
	// outPrice makes one answer cost exactly 2^-10 USD (20 × 48.828125 /
	// 1e6), so sums are exact in floating point.
	outPrice   = 48.828125
	answerCost = 1.0 / 1024
)

func (g *gatedLLM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := fmt.Sprintf("chatcmpl-%d", g.n.Add(1))
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	for i := range chatChunks {
		if i == gateAfter {
			g.paused <- id
			<-g.release
		}
		fmt.Fprintf(w, "data: {\"id\":%q,\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d\"}}]}\n\n", id, i)
		fl.Flush()
	}
	fmt.Fprintf(w, "data: {\"id\":%q,\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n", id, outTokens, outTokens)
	fmt.Fprint(w, "data: [DONE]\n\n")
	fl.Flush()
}

// TestSIGTERMDrainsStreams: SIGTERM in the middle of eight streams turns
// readiness to 503 first, then stops accepting, lets every stream finish
// and bills each of them before the process exits 0.
func TestSIGTERMDrainsStreams(t *testing.T) {
	llm := &gatedLLM{release: make(chan struct{}), paused: make(chan string, 16)}
	up := httptest.NewServer(llm)
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(llm.release) }) }
	defer up.Close()
	defer release() // before up.Close, or a failed test would hang there
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "keygate.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf("model_prices:\n  gpt-4o:\n    input_per_million: 0\n    output_per_million: %v\n", outPrice)), 0o600))
	const master = "sk-master-shutdown-test"
	p := startProcess(t, map[string]string{"KEYGATE_DATA_DIR": dir, "LITELLM_MASTER_KEY": master,
		"KEYGATE_UPSTREAM_URL": up.URL, "KEYGATE_SHUTDOWN_TIMEOUT": "2m", "KEYGATE_SHUTDOWN_DELAY": "2s"}, "--config", cfgFile)
	key := p.newUserKey(master, "streamer", `,"models":["gpt-4o"]`)

	const n = 8
	streams := make([]*sseStream, n)
	for i := range n {
		streams[i] = p.stream(context.Background(), key, `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	}
	for range n {
		<-llm.paused // every stream is in flight, mid-answer
	}

	p.signal(syscall.SIGTERM)
	// Readiness turns false while Keygate still listens, so a load
	// balancer stops sending before connections are refused.
	sawUnready := false
	for {
		resp, err := http.Get(p.base + "/health/readiness")
		if err != nil {
			require.True(t, isClosed(err), "readiness: %v", err)
			break
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			sawUnready = true
		} else {
			require.False(t, sawUnready, "readiness went back to %d after 503", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.True(t, sawUnready, "readiness answered 503 before the listener closed\n%s", p.out.String())

	// The listener is closed; the streams are still in flight. Let them end.
	release()
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var content, usage int
			done := false
			for c := range s.chunks {
				if c == "[DONE]" {
					done = true
					continue
				}
				var ch struct {
					Choices []json.RawMessage `json:"choices"`
					Usage   *struct{}         `json:"usage"`
				}
				require.NoError(t, json.Unmarshal([]byte(c), &ch))
				if len(ch.Choices) > 0 {
					content++
				}
				if ch.Usage != nil {
					usage++
				}
			}
			require.NoError(t, <-s.err, "stream %d", i)
			require.Equal(t, chatChunks, content, "stream %d got every chunk", i)
			require.Equal(t, 1, usage, "stream %d got its usage chunk", i)
			require.True(t, done, "stream %d ended with [DONE]", i)
		}()
	}
	wg.Wait()
	require.NoError(t, p.wait(), "keygate exits 0 after draining\n%s", p.out.String())

	// Every stream was billed, once, at its price.
	st, err := gormstore.Open(context.Background(), gormstore.Options{SQLitePath: filepath.Join(dir, "keygate.db")})
	require.NoError(t, err)
	defer st.Close()
	es, total, err := st.ListSpend(context.Background(), store.SpendFilter{UserID: "streamer", Page: store.Page{Limit: 100}})
	require.NoError(t, err)
	require.EqualValues(t, n, total, "one spend entry per stream\n%s", p.out.String())
	for _, e := range es {
		require.Equal(t, answerCost, e.Spend)
		require.EqualValues(t, outTokens, e.CompletionTokens)
	}
	u, err := st.GetUser(context.Background(), "streamer")
	require.NoError(t, err)
	require.Equal(t, n*answerCost, u.Spend)
}
