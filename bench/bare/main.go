// Command bare is the reference of bench/load.sh: the cheapest useful
// net/http server, answering every request with 200 and a short body.
// Keygate's /auth/verify figures are quoted as a ratio of this one,
// measured in the same run on the same machine (DESIGN.md, "Performance
// targets"), because absolute numbers on shared machines mean little.
//
//	bare PORT    listen on 127.0.0.1:PORT
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: bare PORT")
		os.Exit(2)
	}
	body := []byte(`{"status":"ok"}` + "\n")
	srv := &http.Server{
		Addr: "127.0.0.1:" + os.Args[1],
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
}
