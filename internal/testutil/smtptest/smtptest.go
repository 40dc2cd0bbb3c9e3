// Package smtptest runs a real SMTP server (emersion/go-smtp) on loopback
// inside a test process and keeps what it receives, so mail can be read
// back exactly as a mail server got it.
package smtptest

import (
	"io"
	"mime/quotedprintable"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one delivered mail.
type Message struct {
	Rcpt []string
	// Data is the message as sent (headers and quoted-printable body).
	Data string
}

// Text is the message with quoted-printable soft breaks and escapes
// decoded, so links can be matched whole.
func (m Message) Text() string {
	b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(m.Data)))
	if err != nil {
		return m.Data
	}
	return string(b)
}

// Server is a running SMTP sink.
type Server struct {
	port int

	mu      sync.Mutex
	msgs    []Message
	changed chan struct{}
	// hold, when not nil, keeps DATA waiting until it is closed.
	hold    chan struct{}
	entered chan struct{}
	told    bool // entered is closed
}

// Start runs a sink on 127.0.0.1 until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{changed: make(chan struct{})}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { s.Release(); _ = srv.Close() })
	s.port = ln.Addr().(*net.TCPAddr).Port
	return s
}

// Port is the SMTP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Hold makes every DATA command wait until Release; the returned channel
// is closed when the first one starts waiting.
func (s *Server) Hold() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold, s.entered, s.told = make(chan struct{}), make(chan struct{}), false
	return s.entered
}

// Release lets held deliveries finish.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// Messages returns what was delivered so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait returns once n messages were delivered. Mail may leave after the
// HTTP answer, so tests wait; the bound only turns a hang into a failure.
func (s *Server) Wait(t testing.TB, n int) []Message {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		s.mu.Lock()
		msgs, changed := append([]Message(nil), s.msgs...), s.changed
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("smtptest: want %d messages, have %d", n, len(msgs))
		}
	}
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s    *Server
	rcpt []string
}

func (x *session) Mail(string, *smtp.MailOptions) error { return nil }
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.rcpt = append(x.rcpt, to)
	return nil
}
func (x *session) Reset()        { x.rcpt = nil }
func (x *session) Logout() error { return nil }

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	hold := x.s.hold
	if hold != nil && !x.s.told {
		close(x.s.entered)
		x.s.told = true
	}
	x.s.mu.Unlock()
	if hold != nil {
		<-hold
	}
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, Message{Rcpt: x.rcpt, Data: string(b)})
	close(x.s.changed)
	x.s.changed = make(chan struct{})
	x.s.mu.Unlock()
	return nil
}
