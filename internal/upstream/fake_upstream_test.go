package upstream_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeUpstream is an OpenAI-compatible LLM proxy on loopback. It answers
// chat completions (JSON and SSE), embeddings and the model list, and
// remembers what it was sent.
type fakeUpstream struct {
	mu   sync.Mutex
	reqs []seenRequest
	n    int
	// sent holds the data payloads of the last stream, in order.
	sent []string
	// lastBody is the last JSON answer.
	lastBody []byte

	// gate, when set, holds a stream after its first chunk until closed.
	gate chan struct{}
	// mode: "" normal, "hang" (never answers), "endless" (streams until
	// cancelled), "crlf-bytes" (CRLF framing, one byte per write),
	// "bench" (normal, but requests are not remembered), "fixed-id"
	// (every chat answer has the same id).
	mode string
	// cancelled is closed when a hanging or endless request sees its
	// context end.
	cancelled chan struct{}
	once      sync.Once
}

type seenRequest struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

func newFakeUpstream() *fakeUpstream { return &fakeUpstream{cancelled: make(chan struct{})} }

// Fixed usage the fake reports.
const (
	chatPrompt, chatCompletion     = 11, 7
	streamPrompt, streamCompletion = 5, 3
	embedPrompt                    = 4
)

func (f *fakeUpstream) setMode(m string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = m
}

func (f *fakeUpstream) setGate(g chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = g
}

func (f *fakeUpstream) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.reqs...)
}

func (f *fakeUpstream) sentChunks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.sent...)
}

func (f *fakeUpstream) body() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastBody
}

func (f *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	if f.mode != "bench" { // benchmarks would pile up requests
		f.reqs = append(f.reqs, seenRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	}
	f.n++
	n, mode := f.n, f.mode
	f.mu.Unlock()

	if mode == "hang" {
		<-r.Context().Done()
		f.once.Do(func() { close(f.cancelled) })
		return
	}
	var req struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	_ = json.Unmarshal(body, &req)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		f.json(w, `{"object":"list","data":[`+
			`{"id":"gpt-test","object":"model","created":1700000000,"owned_by":"fake"},`+
			`{"id":"embed-test","object":"model","created":1700000000,"owned_by":"fake"},`+
			`{"id":"secret-model","object":"model","created":1700000000,"owned_by":"fake"}]}`)
	case r.URL.Path == "/v1/embeddings":
		f.json(w, fmt.Sprintf(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.125,-0.5,0.25]}],`+
			`"model":%q,"usage":{"prompt_tokens":%d,"total_tokens":%d}}`, req.Model, embedPrompt, embedPrompt))
	case r.URL.Path == "/v1/chat/completions" && req.Stream:
		f.stream(w, r, n, req.Model, req.StreamOptions != nil && req.StreamOptions.IncludeUsage, mode)
	case r.URL.Path == "/v1/chat/completions":
		id := fmt.Sprintf("chatcmpl-%d", n)
		if mode == "fixed-id" {
			id = "chatcmpl-fixed" // some gateways (and caches) repeat ids
		}
		f.json(w, fmt.Sprintf(`{"id":%q,"object":"chat.completion","created":1700000000,"model":%q,`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello <there> & welcome","refusal":null},`+
			`"logprobs":null,"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d},"system_fingerprint":"fp_fake"}`,
			id, req.Model, chatPrompt, chatCompletion, chatPrompt+chatCompletion))
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":{"message":"no such route","type":"not_found","param":null,"code":"404"}}`)
	}
}

func (f *fakeUpstream) json(w http.ResponseWriter, s string) {
	f.mu.Lock()
	f.lastBody = []byte(s)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, s)
}

func (f *fakeUpstream) stream(w http.ResponseWriter, r *http.Request, n int, model string, withUsage bool, mode string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fl := w.(http.Flusher)
	usageNull := ""
	if withUsage {
		usageNull = `,"usage":null`
	}
	chunk := func(delta, finish string) string {
		return fmt.Sprintf(`{"id":"chatcmpl-s%d","object":"chat.completion.chunk","created":1700000000,"model":%q,`+
			`"choices":[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}]%s}`, n, model, delta, finish, usageNull)
	}
	nl := "\n"
	if mode == "crlf-bytes" {
		nl = "\r\n"
	}
	send := func(data string) bool {
		f.mu.Lock()
		f.sent = append(f.sent, data)
		f.mu.Unlock()
		ev := "data: " + data + nl + nl
		if mode == "crlf-bytes" {
			for i := 0; i < len(ev); i++ {
				if _, err := io.WriteString(w, ev[i:i+1]); err != nil {
					return false
				}
				fl.Flush()
			}
			return true
		}
		_, err := io.WriteString(w, ev)
		fl.Flush()
		return err == nil
	}
	f.mu.Lock()
	f.sent = nil
	gate := f.gate
	f.mu.Unlock()

	send(chunk(`{"role":"assistant","content":"Hel"}`, "null"))
	if mode == "endless" {
		for {
			select {
			case <-r.Context().Done():
				f.once.Do(func() { close(f.cancelled) })
				return
			case <-time.After(5 * time.Millisecond):
				send(chunk(`{"content":"."}`, "null"))
			}
		}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
			return // the test fails on its own timeout
		}
	}
	send(chunk(`{"content":"lo"}`, "null"))
	send(chunk(`{}`, `"stop"`))
	if withUsage {
		send(fmt.Sprintf(`{"id":"chatcmpl-s%d","object":"chat.completion.chunk","created":1700000000,"model":%q,"choices":[],`+
			`"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`,
			n, model, streamPrompt, streamCompletion, streamPrompt+streamCompletion))
	}
	send("[DONE]")
}

// countPath counts requests the upstream saw for path.
func (f *fakeUpstream) countPath(path string) int {
	c := 0
	for _, r := range f.requests() {
		if r.Path == path {
			c++
		}
	}
	return c
}

func headerDump(h http.Header) string {
	var b strings.Builder
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	return b.String()
}

// waitClosed fails t unless ch closes within d.
func waitClosed(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}
