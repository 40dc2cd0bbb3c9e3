package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/mail"
	"github.com/keygate/keygate/internal/testutil/dbtest"
)

// This file checks internal/mail against Mailpit, an independent SMTP
// server and MIME parser: what Keygate sends must arrive intact and
// decode, through someone else's code, to the exact link.

const mailpitSender = "noreply@keygate.example.test"

// TestMailpitDelivers sends both kinds of message through plain SMTP with
// AUTH to loopback, and an invitation through mandatory STARTTLS.
func TestMailpitDelivers(t *testing.T) {
	t.Parallel()
	bin := mailpitBinary(t)

	t.Run("plain with AUTH", func(t *testing.T) {
		mp := startMailpit(t, bin, "--smtp-auth-allow-insecure")
		m, err := mail.New(mail.Options{Host: "127.0.0.1", Port: mp.smtpPort, TLS: mail.TLSNone,
			Username: "keygate", Password: "smtp-password", From: mailpitSender, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)

		invite := "http://127.0.0.1:4100/ui/onboarding?id=" + uuid.NewString()
		expires := time.Now().Add(7 * 24 * time.Hour)
		require.NoError(t, m.SendInvitation(t.Context(), mail.Invitation{
			To: "Alice Example <alice@example.test>", Link: invite, InvitedBy: "admin@example.test", ExpiresAt: expires}))
		got := mp.waitFor(t, "alice@example.test")
		require.Equal(t, "You're invited to Keygate", got.Subject)
		require.Equal(t, []mailpitAddress{{Name: "Alice Example", Address: "alice@example.test"}}, got.To)
		require.Equal(t, mailpitSender, got.From.Address)
		require.Contains(t, got.Text, invite)
		require.Contains(t, got.HTML, `href="`+invite+`"`)
		require.Contains(t, got.HTML, ">"+invite+"</a>")
		require.Contains(t, got.Text, expires.UTC().Format("2 January 2006 at 15:04 UTC"))
		require.True(t, strings.HasSuffix(got.MessageID, "@keygate.example.test"), got.MessageID)

		reset := "http://127.0.0.1:4100/ui/reset-password?token=" + uuid.NewString()
		require.NoError(t, m.SendPasswordReset(t.Context(), mail.PasswordReset{
			To: "bob@example.test", Link: reset, ExpiresAt: time.Now().Add(30 * time.Minute)}))
		got = mp.waitFor(t, "bob@example.test")
		require.Equal(t, "Reset your Keygate password", got.Subject)
		require.Contains(t, got.Text, reset)
		require.Contains(t, got.HTML, `href="`+reset+`"`)
	})

	t.Run("STARTTLS required", func(t *testing.T) {
		dir := t.TempDir()
		cert, key := writeSelfSignedPEM(t, dir)
		// Mailpit refuses --smtp-auth-allow-insecure together with required
		// TLS, so AUTH is only possible after STARTTLS here.
		mp := startMailpit(t, bin, "--smtp-tls-cert", cert, "--smtp-tls-key", key, "--smtp-require-starttls")
		m, err := mail.New(mail.Options{Host: "127.0.0.1", Port: mp.smtpPort, TLS: mail.TLSStartTLS,
			Username: "keygate", Password: "smtp-password", From: mailpitSender, InsecureSkipVerify: true,
			Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)

		invite := "https://keygate.example.test/ui/onboarding?id=" + uuid.NewString()
		require.NoError(t, m.SendInvitation(t.Context(), mail.Invitation{
			To: "carol@example.test", Link: invite, ExpiresAt: time.Now().Add(time.Hour)}))
		got := mp.waitFor(t, "carol@example.test")
		require.Equal(t, "You're invited to Keygate", got.Subject)
		require.Contains(t, got.Text, invite)
		require.Contains(t, got.HTML, invite)
	})
}

// mailpitBinary finds mailpit on PATH or in $HOME/go/bin, else skips.
func mailpitBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, "go", "bin", "mailpit")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	dbtest.RequireOrSkip(t, "Mailpit", "go install github.com/axllent/mailpit@v1.33.1")
	return ""
}

type mailpit struct {
	api      string // http://127.0.0.1:port
	smtpPort int
	client   *http.Client
}

// startMailpit runs Mailpit on free loopback ports with its own database
// and any extra flags until t ends, and waits until its API answers.
func startMailpit(t *testing.T, bin string, extra ...string) *mailpit {
	t.Helper()
	dir := t.TempDir()
	httpPort, smtpPort := mailpitFreePort(t), mailpitFreePort(t)
	args := append([]string{
		"--listen", "127.0.0.1:" + strconv.Itoa(httpPort),
		"--smtp", "127.0.0.1:" + strconv.Itoa(smtpPort),
		"--database", filepath.Join(dir, "mailpit.db"),
		"--disable-version-check", "--smtp-auth-accept-any",
		"--smtp-disable-rdns", "--smtp-strict-rfc-headers",
	}, extra...)
	logPath := filepath.Join(dir, "mailpit.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logFile.Close()
	})

	mp := &mailpit{api: "http://127.0.0.1:" + strconv.Itoa(httpPort), smtpPort: smtpPort,
		client: &http.Client{Timeout: 5 * time.Second}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			t.Fatalf("mailpit exited early (%v):\n%s", waitErr, out)
		default:
		}
		if mp.ready() {
			return mp
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			t.Fatalf("mailpit not ready after 20s:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (mp *mailpit) ready() bool {
	resp, err := mp.client.Get(mp.api + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(mp.smtpPort), time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

type mailpitAddress struct {
	Name    string
	Address string
}

// mailpitMessage is the part of /api/v1/message/<ID> the tests read.
type mailpitMessage struct {
	ID        string
	MessageID string
	From      mailpitAddress
	To        []mailpitAddress
	Subject   string
	Text      string
	HTML      string
}

// waitFor polls the message list until a message to rcpt arrives (Mailpit
// stores asynchronously after DATA) and returns it in full.
func (mp *mailpit) waitFor(t *testing.T, rcpt string) mailpitMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var list struct {
			Total    int
			Messages []struct {
				ID string
				To []mailpitAddress
			}
		}
		mp.get(t, "/api/v1/messages", &list)
		for _, m := range list.Messages {
			if len(m.To) == 1 && m.To[0].Address == rcpt {
				var full mailpitMessage
				mp.get(t, "/api/v1/message/"+url.PathEscape(m.ID), &full)
				return full
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message to %s in Mailpit after 10s (%d others)", rcpt, list.Total)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (mp *mailpit) get(t *testing.T, path string, into any) {
	t.Helper()
	resp, err := mp.client.Get(mp.api + path)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode, path)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(into), path)
}

func mailpitFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// writeSelfSignedPEM writes a certificate for 127.0.0.1/localhost and its
// key into dir and returns their paths.
func writeSelfSignedPEM(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certPath, keyPath = filepath.Join(dir, "smtp.crt"), filepath.Join(dir, "smtp.key")
	write := func(path, typ string, b []byte) {
		require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600))
	}
	write(certPath, "CERTIFICATE", der)
	write(keyPath, "PRIVATE KEY", keyDER)
	return certPath, keyPath
}

// TestResetLinkThroughMailpitIgnoresHost (issue 14, defect 1): Keygate
// with no PROXY_BASE_URL of its own mails a reset link through a real
// mail server; a request naming Host: attacker.example must not change
// where the link points. The link that arrives is then used.
func TestResetLinkThroughMailpitIgnoresHost(t *testing.T) {
	t.Parallel()
	mp := startMailpit(t, mailpitBinary(t), "--smtp-auth-allow-insecure")
	m, err := mail.New(mail.Options{Host: "127.0.0.1", Port: mp.smtpPort, TLS: mail.TLSNone, From: mailpitSender, Logger: quietLogger()})
	require.NoError(t, err)
	st := openStore(t, "")
	// The base is what cmd derives from the listen address without
	// PROXY_BASE_URL; the server below answers on another address.
	a, err := app.New(context.Background(), app.Options{Store: st, Logger: quietLogger(), MasterKeyHash: sha256.Sum256([]byte(masterKey)),
		MaxBodyBytes: 1 << 20, Secret: "mailpit-test-secret-0123456789", Issuer: "http://localhost:4100", Mailer: app.Mailer(m)})
	require.NoError(t, err)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	adminCall(t, srv.Client(), srv.URL, "/user/new", map[string]any{"user_email": "dora@example.test", "user_role": "proxy_admin"})

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/user/forgot_password", strings.NewReader(`{"user_email":"dora@example.test"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Host = "attacker.example"
	req.Header.Set("X-Forwarded-Host", "attacker.example")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	got := mp.waitFor(t, "dora@example.test")
	require.NotContains(t, got.Text+got.HTML, "attacker.example")
	tok := regexp.MustCompile(`http://localhost:4100/ui/reset-password\?token=([A-Za-z0-9_-]{43})`).FindStringSubmatch(got.Text)
	require.Len(t, tok, 2, got.Text)
	resp, err = srv.Client().Post(srv.URL+"/user/reset_password", "application/json",
		strings.NewReader(`{"token":"`+tok[1]+`","new_password":"dora's new password"}`))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, "the mailed link works")
}
