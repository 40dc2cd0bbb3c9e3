// Command bare is the reference of bench/load.sh: the cheapest useful
// net/http server, answering every request with 200 and a short body.
// Keygate's /auth/verify figures are quoted as a ratio of this one,
// measured in the same run on the same machine (DESIGN.md, "Performance
// targets"), because absolute numbers on shared machines mean little.
//
// Given a key it is the second reference, the least any key verifier
// must do: hash the presented bearer key with SHA-256, look the digest up
// in a map, and answer 200 with an identity header, or 401.
//
//	bare PORT        listen on 127.0.0.1:PORT
//	bare PORT KEY    the same, accepting only "Authorization: Bearer KEY"
package main

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 2 && len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: bare PORT [KEY]")
		os.Exit(2)
	}
	body := []byte(`{"status":"ok"}` + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	if len(os.Args) == 3 {
		h = shaMap(os.Args[2], body)
	}
	srv := &http.Server{Addr: "127.0.0.1:" + os.Args[1], Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
}

// shaMap answers for key only: SHA-256 of the bearer credential, a map
// lookup, one identity header.
func shaMap(key string, body []byte) http.HandlerFunc {
	users := map[[sha256.Size]byte][]string{sha256.Sum256([]byte(key)): {"bench-user"}}
	return func(w http.ResponseWriter, r *http.Request) {
		cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		user, found := users[sha256.Sum256([]byte(cred))]
		if !ok || !found {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header()["X-User-Id"] = user
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}
}
