package mail_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"
)

// received is one message as the in-process SMTP server saw it.
type received struct {
	from     string
	rcpt     []string
	data     []byte
	authUser string
	tls      bool
	helo     string
}

// backend is a go-smtp backend that records every accepted message. When
// user is set it offers AUTH PLAIN and requires it before MAIL.
type backend struct {
	user, pass string
	mu         sync.Mutex
	msgs       []received
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{b: b, conn: c}, nil
}

func (b *backend) messages() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

type session struct {
	b    *backend
	conn *smtp.Conn
	cur  received
}

func (s *session) AuthMechanisms() []string {
	if s.b.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.b.user || pass != s.b.pass {
			return errors.New("invalid credentials")
		}
		s.cur.authUser = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.user != "" && s.cur.authUser == "" {
		return smtp.ErrAuthRequired
	}
	s.cur.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.rcpt = append(s.cur.rcpt, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := s.cur
	m.data = data
	_, m.tls = s.conn.TLSConnectionState()
	m.helo = s.conn.Hostname()
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, m)
	s.b.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.cur = received{authUser: s.cur.authUser} }
func (s *session) Logout() error { return nil }

// serverOpts shape the in-process server.
type serverOpts struct {
	host          string // listen address; default 127.0.0.1
	user, pass    string
	startTLS      bool // offer STARTTLS with a self-signed certificate
	implicitTLS   bool // TLS from the first byte
	insecureAuthz bool // allow AUTH over plain text
}

// startServer runs a go-smtp server on 127.0.0.1:0 until t ends.
func startServer(t *testing.T, o serverOpts) (*backend, int) {
	t.Helper()
	be := &backend{user: o.user, pass: o.pass}
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = o.insecureAuthz
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	// Failed handshakes are expected in some tests; their log lines are noise.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if o.host == "" {
		o.host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(o.host, "0"))
	if err != nil && o.host != "127.0.0.1" {
		t.Skipf("cannot listen on %s: %v", o.host, err)
	}
	require.NoError(t, err)
	if o.startTLS || o.implicitTLS {
		cfg := &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, MinVersion: tls.VersionTLS12}
		if o.startTLS {
			srv.TLSConfig = cfg
		} else {
			ln = tls.NewListener(ln, cfg)
		}
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return be, ln.Addr().(*net.TCPAddr).Port
}

// silentServer accepts connections and never says a word, like a
// firewall that black-holes the SMTP conversation.
func silentServer(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				<-done
				_ = c.Close()
			})
		}
	})
	t.Cleanup(func() {
		close(done)
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// closedPort returns a loopback port nobody listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
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
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// parsed is a message split into headers and decoded parts.
type parsed struct {
	header netmail.Header
	parts  map[string]string // media type → decoded body
}

// parse reads raw as an RFC 5322 multipart/alternative message and decodes
// each part's transfer encoding itself, rather than trusting
// multipart.Reader's implicit quoted-printable handling.
func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	require.NoError(t, err)
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/alternative", mediaType)
	p := parsed{header: msg.Header, parts: map[string]string{}}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		pt, pp, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		require.NoError(t, err)
		require.Equal(t, "utf-8", strings.ToLower(pp["charset"]))
		var r io.Reader = part
		switch cte := strings.ToLower(part.Header.Get("Content-Transfer-Encoding")); cte {
		case "quoted-printable":
			r = quotedprintable.NewReader(part)
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, part)
		default:
			t.Fatalf("unexpected transfer encoding %q", cte)
		}
		body, err := io.ReadAll(r)
		require.NoError(t, err)
		// Mail bodies are CRLF; compare with ordinary newlines.
		p.parts[pt] = strings.ReplaceAll(string(body), "\r\n", "\n")
	}
	return p
}

// maxLineLen is the longest line in raw, CRLF excluded.
func maxLineLen(raw []byte) int {
	longest := 0
	for line := range bytes.SplitSeq(raw, []byte("\r\n")) {
		longest = max(longest, len(line))
	}
	return longest
}
