package mail_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/mail"
)

// Transport tests: TLS modes, AUTH rules, and failing or silent servers.

func TestMailAuthOverSTARTTLS(t *testing.T) {
	be, port := startServer(t, serverOpts{user: "smtp-user", pass: "s3cret", startTLS: true})
	m := newMailer(t, port, func(o *mail.Options) {
		o.TLS, o.Username, o.Password, o.InsecureSkipVerify = mail.TLSStartTLS, "smtp-user", "s3cret", true
	})
	require.NoError(t, m.SendInvitation(t.Context(), invitation()))
	msgs := be.messages()
	require.Len(t, msgs, 1)
	require.True(t, msgs[0].tls, "message travelled over TLS")
	require.Equal(t, "smtp-user", msgs[0].authUser)

	bad := newMailer(t, port, func(o *mail.Options) {
		o.TLS, o.Username, o.Password, o.InsecureSkipVerify = mail.TLSStartTLS, "smtp-user", "wrong", true
	})
	err := bad.SendInvitation(t.Context(), invitation())
	require.ErrorContains(t, err, "AUTH")
	require.NotContains(t, err.Error(), "wrong")
	require.Len(t, be.messages(), 1)
}

// TestMailAuthNeedsTLSBeyondLocalhost uses 127.0.0.2: loopback in fact,
// but not one of the names net/smtp trusts, so only TLS permits AUTH.
func TestMailAuthNeedsTLSBeyondLocalhost(t *testing.T) {
	_, err := mail.New(mail.Options{Host: "127.0.0.2", TLS: mail.TLSNone, From: sender, Username: "u", Password: "p"})
	require.ErrorIs(t, err, mail.ErrConfig)

	be, port := startServer(t, serverOpts{host: "127.0.0.2", user: "u", pass: "p", startTLS: true})
	m := newMailer(t, port, func(o *mail.Options) {
		o.Host, o.TLS, o.Username, o.Password, o.InsecureSkipVerify = "127.0.0.2", mail.TLSStartTLS, "u", "p", true
	})
	require.NoError(t, m.SendInvitation(t.Context(), invitation()))
	require.True(t, be.messages()[0].tls)
	require.Equal(t, "u", be.messages()[0].authUser)
}

func TestMailSTARTTLSVerifiesCertificate(t *testing.T) {
	be, port := startServer(t, serverOpts{startTLS: true})
	m := newMailer(t, port, func(o *mail.Options) { o.TLS = mail.TLSStartTLS })
	err := m.SendInvitation(t.Context(), invitation())
	require.ErrorContains(t, err, "certificate")
	require.Empty(t, be.messages())
}

func TestMailSTARTTLSIsRequired(t *testing.T) {
	be, port := startServer(t, serverOpts{})
	m := newMailer(t, port, func(o *mail.Options) { o.TLS = mail.TLSStartTLS; o.InsecureSkipVerify = true })
	err := m.SendInvitation(t.Context(), invitation())
	require.ErrorContains(t, err, "STARTTLS")
	require.Empty(t, be.messages())
}

func TestMailImplicitTLS(t *testing.T) {
	be, port := startServer(t, serverOpts{user: "u", pass: "p", implicitTLS: true})
	m := newMailer(t, port, func(o *mail.Options) {
		o.TLS, o.Username, o.Password, o.InsecureSkipVerify = mail.TLSImplicit, "u", "p", true
	})
	require.NoError(t, m.SendPasswordReset(t.Context(), mail.PasswordReset{To: recipient, Link: resetURL, ExpiresAt: expiresAt()}))
	msgs := be.messages()
	require.Len(t, msgs, 1)
	require.True(t, msgs[0].tls)
	require.Equal(t, "u", msgs[0].authUser)
}

func TestMailPlainAuthOnlyToLoopback(t *testing.T) {
	_, err := mail.New(mail.Options{Host: "smtp.example.test", TLS: mail.TLSNone, From: sender, Username: "u", Password: "p"})
	require.ErrorIs(t, err, mail.ErrConfig)

	be, port := startServer(t, serverOpts{user: "u", pass: "p", insecureAuthz: true})
	m := newMailer(t, port, func(o *mail.Options) { o.Username, o.Password = "u", "p" })
	require.NoError(t, m.SendInvitation(t.Context(), invitation()))
	require.Equal(t, "u", be.messages()[0].authUser)

	// A server that offers no AUTH while credentials are configured is a
	// misconfiguration worth reporting, not a reason to send anonymously.
	be2, port2 := startServer(t, serverOpts{})
	m2 := newMailer(t, port2, func(o *mail.Options) { o.Username, o.Password = "u", "p" })
	require.ErrorContains(t, m2.SendInvitation(t.Context(), invitation()), "AUTH")
	require.Empty(t, be2.messages())
}

func TestMailServerDownFailsFast(t *testing.T) {
	m := newMailer(t, closedPort(t), nil)
	start := time.Now()
	err := m.SendInvitation(t.Context(), invitation())
	require.Error(t, err)
	require.Contains(t, err.Error(), "connect to 127.0.0.1:")
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestMailTimeout(t *testing.T) {
	m := newMailer(t, silentServer(t), func(o *mail.Options) { o.Timeout = 200 * time.Millisecond })
	start := time.Now()
	err := m.SendInvitation(t.Context(), invitation())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestMailContextCancelled(t *testing.T) {
	m := newMailer(t, silentServer(t), func(o *mail.Options) { o.Timeout = time.Minute })

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := m.SendInvitation(ctx, invitation())
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), 2*time.Second)

	done, cancelNow := context.WithCancel(t.Context())
	cancelNow()
	require.ErrorIs(t, m.SendPasswordReset(done, mail.PasswordReset{To: recipient, Link: resetURL, ExpiresAt: expiresAt()}), context.Canceled)
}
