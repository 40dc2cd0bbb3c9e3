package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck probes a running Keygate's liveness endpoint. It exists so
// the container image needs no shell or curl.
func healthcheck(ctx context.Context, args []string, lookup func(string) (string, bool), stdout io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	url := fs.String("url", "", "URL to probe (default: http://127.0.0.1:<port of KEYGATE_ADDR>/health/liveliness)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	if *url == "" {
		addr, ok := lookup("KEYGATE_ADDR")
		if !ok || addr == "" {
			addr = "127.0.0.1:4100" // config's default
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("healthcheck: KEYGATE_ADDR %q: %w", addr, err)
		}
		scheme := "http"
		if v, ok := lookup("KEYGATE_TLS_CERT_FILE"); ok && v != "" {
			scheme = "https"
		}
		*url = fmt.Sprintf("%s://127.0.0.1:%s/health/liveliness", scheme, port)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// The probe targets this machine's own listener, whose certificate
	// rarely names 127.0.0.1; liveness is not a place to check it.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback liveness probe
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", *url, resp.StatusCode)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
