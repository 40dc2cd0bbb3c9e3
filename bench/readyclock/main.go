// Command readyclock is bench/load.sh's stopwatch for start-up: given the
// time a process was started (Unix nanoseconds) and a URL, it polls the
// URL every millisecond until it answers 200 and prints the milliseconds
// since the start. A shell loop of curl and sleep measures its own
// process starts and sleeps too (10–20 ms here), which is most of the
// margin being measured.
//
//	readyclock START_NS URL [HEADER: VALUE]...
package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: readyclock START_NS URL [HEADER: VALUE]...")
		os.Exit(2)
	}
	ns, err := strconv.ParseInt(os.Args[1], 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "readyclock: START_NS:", err)
		os.Exit(2)
	}
	start := time.Unix(0, ns)
	req, err := http.NewRequest(http.MethodGet, os.Args[2], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "readyclock:", err)
		os.Exit(2)
	}
	for _, h := range os.Args[3:] {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	// A fresh connection per try: a refused connection is the usual answer
	// until the server listens.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for deadline := start.Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			fmt.Println(time.Since(start).Milliseconds())
			return
		}
	}
	fmt.Fprintln(os.Stderr, "readyclock: no 200 from", os.Args[2])
	os.Exit(1)
}
