package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strconv"
)

// deliver runs one SMTP transaction: connect, EHLO, (STARTTLS), (AUTH),
// MAIL, RCPT, DATA, QUIT. net/smtp is not context-aware, so when ctx ends
// — cancelled by the caller, or Timeout reached — the socket is closed,
// which unblocks any pending read or write at once.
func (m *Mailer) deliver(ctx context.Context, to string, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("not sent: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()

	addr := net.JoinHostPort(m.opts.Host, strconv.Itoa(m.opts.Port))
	conn, raw, err := m.dial(ctx, addr)
	if err != nil {
		return stepErr(ctx, "connect to "+addr, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer stop()

	// NewClient reads the greeting; it notices a *tls.Conn and then treats
	// the session as encrypted, which PlainAuth relies on.
	c, err := smtp.NewClient(conn, m.opts.Host)
	if err != nil {
		_ = conn.Close()
		return stepErr(ctx, "greeting from "+addr, err)
	}
	defer func() { _ = c.Close() }()

	if err := m.converse(c, to, msg); err != nil {
		return stepErr(ctx, addr, err)
	}
	// The message is accepted once DATA ends; a failing QUIT changes nothing.
	_ = c.Quit()
	return nil
}

func (m *Mailer) converse(c *smtp.Client, to string, msg []byte) error {
	if err := c.Hello(ehloName); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if m.opts.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("server does not offer STARTTLS, which TLS mode \"starttls\" requires")
		}
		if err := c.StartTLS(m.tlsConfig()); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if m.opts.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("server does not offer AUTH, but a username is configured")
		}
		// net/smtp's PlainAuth refuses to send credentials unless the
		// connection is TLS or the host is localhost — the rule we want.
		auth := smtp.PlainAuth("", m.opts.Username, m.opts.Password, m.opts.Host)
		if err := c.Auth(auth); err != nil {
			return fmt.Errorf("AUTH PLAIN: %w", err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		_ = w.Close()
		return fmt.Errorf("DATA: write: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA: end: %w", err)
	}
	return nil
}

// dial returns the connection to speak SMTP over and the raw TCP
// connection under it, which is what cancellation closes: closing a
// tls.Conn may wait for a pending write, closing the socket never does.
func (m *Mailer) dial(ctx context.Context, addr string) (conn, raw net.Conn, err error) {
	d := &net.Dialer{} // ctx carries the deadline
	raw, err = d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if m.opts.TLS != TLSImplicit {
		return raw, raw, nil
	}
	tc := tls.Client(raw, m.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, raw, nil
}

func (m *Mailer) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName:         m.opts.Host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: m.opts.InsecureSkipVerify, //nolint:gosec // tests only, documented on Options
	}
}

// stepErr wraps err with the step that failed; when ctx ended (cancelled,
// or Timeout reached) it also wraps ctx's error so that callers can tell
// with errors.Is(err, context.DeadlineExceeded) or context.Canceled.
func stepErr(ctx context.Context, step string, err error) error {
	cerr := ctx.Err()
	var ne net.Error
	if cerr == nil && errors.As(err, &ne) && ne.Timeout() {
		// The dialer's socket deadline (ctx's) can fire a hair before ctx's
		// own timer; it is the same timeout.
		cerr = context.DeadlineExceeded
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%s: %w: %w", step, cerr, err)
	}
	return fmt.Errorf("%s: %w", step, err)
}

// isLocalhost mirrors net/smtp's private check used by PlainAuth.
func isLocalhost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
