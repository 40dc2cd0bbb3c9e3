package main

// Regression tests for issue 14 that need the real binary's wiring:
// configuration → links, SSO policy, files on disk, warnings, --help.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/oidctest"
	"github.com/keygate/keygate/internal/testutil/smtptest"
)

// freeAddr returns a loopback address no one listens on right now, for
// tests that must know the server's address before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func call(t *testing.T, method, u, token string, hdr map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Defect 1: without PROXY_BASE_URL the mailed reset link took its host
// from the request. It is now derived from the listen address, and the
// start-up output says so.
func TestLinksFromListenAddressNotHost(t *testing.T) {
	sink := smtptest.Start(t)
	addr := freeAddr(t)
	base, out, _ := startServer(t, map[string]string{"KEYGATE_DATA_DIR": t.TempDir(), "KEYGATE_ADDR": addr,
		"LITELLM_MASTER_KEY": "sk-links-master-key-0123456789", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": strconv.Itoa(sink.Port()),
		"SMTP_TLS": "none", "SMTP_SENDER_EMAIL": "keygate@example.com"})
	require.Contains(t, out.String(), "PROXY_BASE_URL")
	require.Contains(t, out.String(), "http://"+addr)
	code, body := call(t, http.MethodPost, base+"/user/new", "sk-links-master-key-0123456789", nil,
		`{"user_email":"boss@example.com","user_role":"proxy_admin"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = call(t, http.MethodPost, base+"/user/forgot_password", "", map[string]string{"Host": "attacker.example",
		"X-Forwarded-Host": "attacker.example", "X-Forwarded-Proto": "https"}, `{"user_email":"boss@example.com"}`)
	require.Equal(t, http.StatusOK, code, body)
	text := sink.Wait(t, 1)[0].Text()
	require.NotContains(t, text, "attacker.example")
	require.Contains(t, text, "http://"+addr+"/ui/reset-password?token=")
}

// Defect 2: SSO sign-up gave internal_user; the documented default is
// internal_user_viewer. Tested through configuration and the real
// /sso/callback. SSO without a domain allow-list or role mapping is
// warned about at start.
func TestSSODefaultRoleThroughCallback(t *testing.T) {
	addr := freeAddr(t)
	base := "http://" + addr
	op := oidctest.New(t, oidctest.Options{RedirectURIs: []string{base + "/sso/callback"}})
	op.SetUser(oidctest.User{Subject: "sub-jit", Email: "jit@anywhere.example", EmailVerified: true, Name: "Jit"})
	_, out, _ := startServer(t, map[string]string{"KEYGATE_DATA_DIR": t.TempDir(), "KEYGATE_ADDR": addr, "PROXY_BASE_URL": base,
		"GENERIC_CLIENT_ID": op.ClientID(), "GENERIC_CLIENT_SECRET": op.ClientSecret(), "GENERIC_ISSUER": op.Issuer()})
	require.Contains(t, out.String(), "ALLOWED_EMAIL_DOMAINS", "SSO open to every IdP account is warned about")

	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	b := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := b.Get(base + "/sso/login/generic")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	q := op.Login(t, resp.Header.Get("Location"))
	resp, err = b.Get(base + "/sso/callback?" + q.Encode())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	u, _ := url.Parse(base)
	tok := ""
	for _, c := range jar.Cookies(u) {
		if c.Name == "keygate_session" {
			tok = c.Value
		}
	}
	require.NotEmpty(t, tok)
	code, body := call(t, http.MethodGet, base+"/user/info", tok, nil, "")
	require.Equal(t, http.StatusOK, code, body)
	var info struct {
		UserInfo struct {
			Role string `json:"user_role"`
		} `json:"user_info"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	require.Equal(t, "internal_user_viewer", info.UserInfo.Role)
}

// Defect 13: the database, the generated secret and the data directory
// were readable by everyone.
func TestDataFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, _, stop := startServer(t, map[string]string{"KEYGATE_DATA_DIR": dir})
	require.NoError(t, stop())
	mode := func(p string) os.FileMode {
		st, err := os.Stat(p)
		require.NoError(t, err)
		return st.Mode().Perm()
	}
	require.Equal(t, os.FileMode(0o700), mode(dir))
	require.Equal(t, os.FileMode(0o600), mode(filepath.Join(dir, "keygate.db")))
	require.Equal(t, os.FileMode(0o600), mode(filepath.Join(dir, "keygate.secret")))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.Equal(t, os.FileMode(0o600), mode(filepath.Join(dir, e.Name())), e.Name())
	}
}

// Defect 13: with the README's first command the secret and database
// landed in the repository root; the default data directory and the
// secret are ignored by git.
func TestDefaultDataIsIgnoredByGit(t *testing.T) {
	lookup, environ := envOf(map[string]string{})
	cfg, err := loadConfig("serve", nil, env{lookup: lookup, environ: environ})
	require.NoError(t, err)
	require.NotEqual(t, ".", filepath.Clean(cfg.Database.DataDir), "the default data directory is not the working directory")
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	for _, p := range []string{filepath.Join(cfg.Database.DataDir, "keygate.db"), filepath.Join(cfg.Database.DataDir, "keygate.secret"),
		filepath.Join(cfg.Database.DataDir, "keygate.db-wal"), filepath.Join(cfg.Database.DataDir, masterKeyFile), "keygate.secret", "keygate.db", "keygate.db-shm"} {
		cmd := exec.Command(git, "check-ignore", "-q", "--no-index", p)
		cmd.Dir = root
		require.NoError(t, cmd.Run(), "%s is not ignored by .gitignore", p)
	}
}

// Defect 13: a short or well-known master key is accepted (scripts use
// it) but warned about.
func TestWeakMasterKeyWarned(t *testing.T) {
	for _, key := range []string{"sk-1234", "sk-12345678"} {
		base, out, _ := startServer(t, map[string]string{"KEYGATE_DATA_DIR": t.TempDir(), "LITELLM_MASTER_KEY": key})
		require.Contains(t, out.String(), "weak", key)
		require.NotContains(t, out.String(), key+" ", "the key itself is not printed")
		code, _ := get(t, base+"/user/list", key)
		require.Equal(t, http.StatusOK, code, "a weak key still works")
	}
	_, out, _ := startServer(t, map[string]string{"KEYGATE_DATA_DIR": t.TempDir(), "LITELLM_MASTER_KEY": "sk-Zq8vR2mK7pX4nW9tL3bY6cF1hJ5dG0sA"})
	require.NotContains(t, out.String(), "weak")
}

// Defect 15: `keygate <subcommand> --help` printed usage as an error and
// exited 1.
func TestSubcommandHelp(t *testing.T) {
	lookup, environ := envOf(map[string]string{})
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"serve", "--help"}, {"serve", "-h"}, {"check-config", "--help"},
		{"user", "create", "--help"}, {"user", "--help"}, {"invite", "-h"}, {"healthcheck", "--help"}, {"import-litellm", "--help"}} {
		var out bytes.Buffer
		err := run(context.Background(), args, lookup, environ, &out)
		require.NoError(t, err, "%v", args)
		require.Contains(t, out.String(), "usage:", "%v", args)
	}
}

// An install from before the data directory keeps its database where it
// is (with a warning) instead of starting afresh, and its world-readable
// files are made private.
func TestLegacyDatabaseInWorkingDirectory(t *testing.T) {
	t.Chdir(t.TempDir())
	require.NoError(t, os.WriteFile("keygate.db", nil, 0o644))
	require.NoError(t, os.WriteFile("keygate.secret", []byte("0123456789abcdef0123\n"), 0o644))
	lookup, environ := envOf(map[string]string{})
	cfg, err := loadConfig("serve", nil, env{lookup: lookup, environ: environ})
	require.NoError(t, err)
	var logs bytes.Buffer
	require.NoError(t, prepareDataDir(cfg, slog.New(slog.NewTextHandler(&logs, nil))))
	require.Equal(t, ".", cfg.Database.DataDir)
	require.Contains(t, logs.String(), "old default")
	for _, f := range []string{"keygate.db", "keygate.secret"} {
		st, err := os.Stat(f)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), f)
	}
	_, err = os.Stat("keygate-data")
	require.ErrorIs(t, err, os.ErrNotExist)
}
