// Command fakellm is the upstream of bench/load.sh's metered-forwarding
// figures: an OpenAI-compatible chat completions endpoint answering every
// request at once with the same small JSON answer and usage (10 prompt and
// 20 completion tokens), and counting the answers it gave, so the run can
// check that Keygate billed every one of them exactly once.
//
//	fakellm PORT    listen on 127.0.0.1:PORT
//	GET /count      the number of completions answered so far
package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fakellm PORT")
		os.Exit(2)
	}
	var n atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, _ *http.Request) {
		id := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"chatcmpl-%d","object":"chat.completion","created":1700000000,"model":"gpt-4o",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30}}`, id)
	})
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strconv.FormatInt(n.Load(), 10) + "\n"))
	})
	srv := &http.Server{Addr: "127.0.0.1:" + os.Args[1], Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "fakellm:", err)
		os.Exit(1)
	}
}
