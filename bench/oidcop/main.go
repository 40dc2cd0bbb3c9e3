// Command oidcop runs the tests' in-process OpenID provider
// (internal/testutil/oidctest) as a standalone loopback server, and logs a
// relying party in through it, so bench/load.sh can measure oauth2-proxy's
// /oauth2/auth with a real session cookie. It is a benchmark tool, never
// an identity provider to deploy: /authorize logs anyone in, at once, as
// alice@example.com.
//
//	oidcop serve ADDR REDIRECT_URI   serve on ADDR (client "keygate", secret
//	                                 "keygate-secret") until SIGINT/SIGTERM
//	oidcop login URL                 GET URL with a cookie jar, following every
//	                                 redirect (the relying party's login start,
//	                                 the provider, the callback), and print the
//	                                 Cookie header the relying party set for URL
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keygate/keygate/internal/testutil/oidctest"
)

func main() {
	var err error
	switch {
	case len(os.Args) == 4 && os.Args[1] == "serve":
		err = serve(os.Args[2], os.Args[3])
	case len(os.Args) == 3 && os.Args[1] == "login":
		var cookie string
		if cookie, err = login(os.Args[2]); err == nil {
			fmt.Println(cookie)
		}
	default:
		err = errors.New("usage: oidcop serve ADDR REDIRECT_URI | oidcop login URL")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "oidcop:", err)
		os.Exit(1)
	}
}

// runner is the oidctest.TB of a program: failures are printed (Fatalf
// exits), clean-ups run when serve returns.
type runner struct {
	mu       sync.Mutex
	cleanups []func()
}

func (*runner) Helper() {}

func (*runner) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "oidcop: "+format+"\n", args...)
}

func (*runner) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "oidcop: "+format+"\n", args...)
	os.Exit(1)
}

func (r *runner) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *runner) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func serve(addr, redirectURI string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &runner{}
	defer r.close()
	op := oidctest.New(r, oidctest.Options{Addr: addr, RedirectURIs: []string{redirectURI}})
	fmt.Fprintf(os.Stderr, "oidcop: issuer %s, client %s\n", op.Issuer(), op.ClientID())
	<-ctx.Done()
	return nil
}

func login(start string) (string, error) {
	u, err := url.Parse(start)
	if err != nil {
		return "", fmt.Errorf("login URL: %w", err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", fmt.Errorf("cookie jar: %w", err)
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(start)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login ended at %s with %d: %s", resp.Request.URL, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var parts []string
	for _, ck := range jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("login ended at %s without setting a cookie", resp.Request.URL)
	}
	return strings.Join(parts, "; "), nil
}
