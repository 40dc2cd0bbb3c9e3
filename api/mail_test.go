package api_test

import (
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/mail"
)

// smtpSink is a real SMTP server on loopback that keeps what it receives.
type smtpSink struct {
	mu   sync.Mutex
	msgs []sinkMsg
}

type sinkMsg struct {
	rcpt []string
	data string
}

func (s *smtpSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

type sinkSession struct {
	s    *smtpSink
	rcpt []string
}

func (x *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (x *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.rcpt = append(x.rcpt, to)
	return nil
}
func (x *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, sinkMsg{rcpt: x.rcpt, data: string(b)})
	x.s.mu.Unlock()
	return nil
}
func (x *sinkSession) Reset()        {}
func (x *sinkSession) Logout() error { return nil }

func (s *smtpSink) all() []sinkMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMsg(nil), s.msgs...)
}

// TestInvitationMailCompletesOnboarding: the mailed invitation reaches the
// right recipient with the right subject, and its link completes
// onboarding; a reset mail's link resets the password.
func TestInvitationMailCompletesOnboarding(t *testing.T) {
	sink := &smtpSink{}
	srv := smtp.NewServer(sink)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	m, err := mail.New(mail.Options{Host: "127.0.0.1", Port: port, TLS: mail.TLSNone, From: "keygate@example.com"})
	require.NoError(t, err)
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) {
		o.BaseURL, o.Mailer = "https://keygate.example.com", app.Mailer(m)
	})

	r := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_email": "mia@example.com", "user_role": "internal_user",
		"send_invite_email": true, "auto_create_key": false})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	require.Equal(t, true, r.JSON(t)["email_sent"], r.Body.String())
	msgs := sink.all()
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"mia@example.com"}, msgs[0].rcpt)
	body, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(msgs[0].data)))
	require.NoError(t, err)
	require.Regexp(t, `(?m)^Subject: .*invited`, string(body))
	link := regexp.MustCompile(`https://keygate\.example\.com/ui/onboarding\?id=[0-9a-f-]{36}`).FindString(string(body))
	require.NotEmpty(t, link, "the mail carries the real link")
	require.Equal(t, link, r.JSON(t)["invitation_link"])

	r = e.do(http.MethodPost, "/onboarding/claim_token", "", map[string]any{"invitation_link": invitationID(t, link), "password": "mia's password"})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	lr, _ := e.login("mia@example.com", "mia's password")
	require.Equal(t, http.StatusOK, lr.Code)

	// reset by mail: the link sets a new password and signs out the old sessions
	old := lr.JSON(t)["token"].(string)
	require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/user/forgot_password", "", map[string]any{"user_email": "mia@example.com"}).Code)
	msgs = sink.all()
	require.Len(t, msgs, 2)
	body, err = io.ReadAll(quotedprintable.NewReader(strings.NewReader(msgs[1].data)))
	require.NoError(t, err)
	tok := regexp.MustCompile(`https://keygate\.example\.com/ui/reset-password\?token=([A-Za-z0-9_-]{43})`).FindStringSubmatch(string(body))
	require.Len(t, tok, 2, string(body))
	r = e.do(http.MethodPost, "/user/reset_password", "", map[string]any{"token": tok[1], "new_password": "mia's new password"})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	requireError(t, e.do(http.MethodGet, "/user/info", old, nil), http.StatusUnauthorized)
	requireError(t, e.do(http.MethodPost, "/user/reset_password", "", map[string]any{"token": tok[1], "new_password": "again password"}), http.StatusUnauthorized)
	lr, _ = e.login("mia@example.com", "mia's new password")
	require.Equal(t, http.StatusOK, lr.Code)
	// nobody@ gets the same answer and no mail
	require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/user/forgot_password", "", map[string]any{"user_email": "nobody@example.com"}).Code)
	require.Len(t, sink.all(), 2)
}
