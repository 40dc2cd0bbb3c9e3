// Package mail sends Keygate's transactional e-mail — invitations and
// password resets — over SMTP.
//
// Each message is multipart/alternative (text and HTML, both rendered from
// embedded templates) and carries the real, full link the recipient needs:
// a mail that only names the product's base URL leaves the user with no way
// to finish onboarding. Links are secrets, so they are never logged and
// never appear in returned errors; logs name only the recipient's domain.
//
// A Mailer built from Options with an empty Host is disabled, and so is a
// nil *Mailer: Enabled reports false and the Send methods return
// ErrDisabled, so callers can wire the mailer unconditionally.
package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"strings"
	"time"
)

// TLS modes accepted in Options.TLS.
const (
	// TLSStartTLS upgrades a plain connection with STARTTLS and fails if the
	// server does not offer it: opportunistic TLS would silently send the
	// password and the link in clear text to a downgrading attacker.
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS, usually port 465).
	TLSImplicit = "tls"
	// TLSNone sends in clear text; AUTH is then allowed only to loopback.
	TLSNone = "none"
)

// Defaults applied by New.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultProductName = "Keygate"
	// ehloName is what Keygate calls itself in EHLO; the machine's host
	// name would leak internal naming to the mail provider for no benefit.
	ehloName = "keygate"
)

// Sentinel errors. Returned errors wrap them, so use errors.Is.
var (
	// ErrDisabled means SMTP is not configured (empty Host or nil Mailer).
	ErrDisabled = errors.New("mail: SMTP is not configured")
	// ErrConfig means Options are invalid; New returns it wrapped.
	ErrConfig = errors.New("mail: invalid SMTP configuration")
	// ErrInvalid means a message's fields are invalid (bad recipient,
	// CR/LF in a value, a link that is not an absolute http(s) URL, ...).
	// Nothing was sent.
	ErrInvalid = errors.New("mail: invalid message")
)

// Options configure a Mailer. Only Host and From are required.
type Options struct {
	Host     string
	Port     int // 0 selects 465 for "tls", 587 for "starttls", 25 for "none"
	Username string
	Password string
	// TLS is "starttls" (the default when empty), "tls" (implicit) or "none".
	TLS string
	// From is the sender, "addr@domain" or "Name <addr@domain>". Without a
	// display name, ProductName is used. Its domain names Message-IDs.
	From string
	// Timeout bounds one whole delivery (dial to QUIT); default 10s.
	Timeout     time.Duration
	Logger      *slog.Logger // nil logs to slog.Default()
	ProductName string       // default "Keygate"; used in subjects and bodies
	// InsecureSkipVerify disables certificate verification. Tests only.
	InsecureSkipVerify bool
}

// Mailer sends invitation and password-reset messages. It is safe for
// concurrent use; each message uses its own SMTP connection.
type Mailer struct {
	opts   Options
	from   *netmail.Address
	domain string // sender domain, for Message-ID
	logger *slog.Logger
	tmpl   *templates
}

// Invitation is the input of SendInvitation.
type Invitation struct {
	To        string    // recipient, parsed with net/mail.ParseAddress
	Link      string    // absolute http(s) onboarding link, sent verbatim
	InvitedBy string    // optional, shown in the body
	ExpiresAt time.Time // required, shown in UTC
}

// PasswordReset is the input of SendPasswordReset.
type PasswordReset struct {
	To        string
	Link      string
	ExpiresAt time.Time
}

// New validates o and returns a Mailer. An empty Host yields a disabled
// Mailer and no error, because running without e-mail is a supported setup.
func New(o Options) (*Mailer, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if strings.TrimSpace(o.Host) == "" {
		return &Mailer{opts: o, logger: o.Logger}, nil
	}
	if err := normalize(&o); err != nil {
		return nil, err
	}
	from, err := netmail.ParseAddress(o.From)
	if err != nil || hasControl(o.From) {
		return nil, fmt.Errorf("%w: sender address (SMTP_SENDER_EMAIL) does not parse", ErrConfig)
	}
	at := strings.LastIndexByte(from.Address, '@')
	if at < 0 || at == len(from.Address)-1 {
		return nil, fmt.Errorf("%w: sender address has no domain", ErrConfig)
	}
	if from.Name == "" {
		from.Name = o.ProductName
	}
	t, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	return &Mailer{opts: o, from: from, domain: from.Address[at+1:], logger: o.Logger, tmpl: t}, nil
}

// normalize applies defaults to o and checks everything but From.
func normalize(o *Options) error {
	o.Host = strings.TrimSpace(o.Host)
	if hasControl(o.Host) || strings.ContainsAny(o.Host, " /@") {
		return fmt.Errorf("%w: host %q", ErrConfig, o.Host)
	}
	if strings.Contains(o.Host, ":") && net.ParseIP(o.Host) == nil {
		return fmt.Errorf("%w: host %q must not include a port (set Port)", ErrConfig, o.Host)
	}
	o.TLS = strings.ToLower(strings.TrimSpace(o.TLS))
	defaultPort := 587
	switch o.TLS {
	case "", TLSStartTLS:
		o.TLS = TLSStartTLS
	case TLSImplicit:
		defaultPort = 465
	case TLSNone:
		defaultPort = 25
	default:
		return fmt.Errorf("%w: TLS mode %q (want starttls, tls or none)", ErrConfig, o.TLS)
	}
	if o.Port == 0 {
		o.Port = defaultPort
	}
	if o.Port < 1 || o.Port > 65535 {
		return fmt.Errorf("%w: port %d", ErrConfig, o.Port)
	}
	if o.Username == "" && o.Password != "" {
		return fmt.Errorf("%w: password given without a username", ErrConfig)
	}
	// Same rule as net/smtp.PlainAuth, checked at start-up so a bad
	// deployment fails on boot rather than on the first invitation.
	if o.Username != "" && o.TLS == TLSNone && !isLocalhost(o.Host) {
		return fmt.Errorf("%w: refusing SMTP AUTH without TLS to non-local host %s", ErrConfig, o.Host)
	}
	if hasControl(o.Username) || hasControl(o.Password) {
		return fmt.Errorf("%w: control character in credentials", ErrConfig)
	}
	if o.Timeout < 0 {
		return fmt.Errorf("%w: negative timeout", ErrConfig)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ProductName == "" {
		o.ProductName = DefaultProductName
	}
	if hasControl(o.ProductName) {
		return fmt.Errorf("%w: control character in product name", ErrConfig)
	}
	return nil
}

// Enabled reports whether m can send; false for nil and for an empty Host.
func (m *Mailer) Enabled() bool { return m != nil && m.from != nil }

// SendInvitation mails an invitation with its onboarding link.
func (m *Mailer) SendInvitation(ctx context.Context, msg Invitation) error {
	const kind = "invitation"
	if !m.Enabled() {
		return ErrDisabled
	}
	if hasControl(msg.InvitedBy) {
		return fmt.Errorf("mail: %s: %w: control character in inviter", kind, ErrInvalid)
	}
	to, data, err := m.prepare(msg.To, msg.Link, msg.ExpiresAt)
	if err != nil {
		return fmt.Errorf("mail: %s: %w", kind, err)
	}
	data.InvitedBy = strings.TrimSpace(msg.InvitedBy)
	subject := "You're invited to " + m.opts.ProductName
	return m.send(ctx, kind, to, subject, m.tmpl.invitationText, m.tmpl.invitationHTML, data)
}

// SendPasswordReset mails a password-reset link.
func (m *Mailer) SendPasswordReset(ctx context.Context, msg PasswordReset) error {
	const kind = "password_reset"
	if !m.Enabled() {
		return ErrDisabled
	}
	to, data, err := m.prepare(msg.To, msg.Link, msg.ExpiresAt)
	if err != nil {
		return fmt.Errorf("mail: %s: %w", kind, err)
	}
	subject := "Reset your " + m.opts.ProductName + " password"
	return m.send(ctx, kind, to, subject, m.tmpl.resetText, m.tmpl.resetHTML, data)
}

// SecurityNotice is the input of SendSecurityNotice: a change to how the
// account signs in (second factors added, removed or reset, a recovery
// code used), so its owner notices one they did not make.
type SecurityNotice struct {
	To   string
	What string // one or two plain sentences
	At   time.Time
}

// SendSecurityNotice mails a security notice. It carries no link: a mail
// that asks to click something after a security change is what phishing
// looks like.
func (m *Mailer) SendSecurityNotice(ctx context.Context, msg SecurityNotice) error {
	const kind = "security_notice"
	if !m.Enabled() {
		return ErrDisabled
	}
	if hasControl(msg.To) {
		return fmt.Errorf("mail: %s: %w: control character in recipient", kind, ErrInvalid)
	}
	to, err := netmail.ParseAddress(msg.To)
	if err != nil {
		return fmt.Errorf("mail: %s: %w: recipient address: %w", kind, ErrInvalid, err)
	}
	what := strings.TrimSpace(msg.What)
	if what == "" || msg.At.IsZero() {
		return fmt.Errorf("mail: %s: %w: nothing to tell", kind, ErrInvalid)
	}
	data := templateData{ProductName: m.opts.ProductName, Recipient: to.Address, What: what, When: msg.At.UTC().Format(expiryLayout)}
	subject := "Security notice: your " + m.opts.ProductName + " sign-in settings changed"
	return m.send(ctx, kind, to, subject, m.tmpl.noticeText, m.tmpl.noticeHTML, data)
}

// send renders, delivers and logs one message.
func (m *Mailer) send(ctx context.Context, kind string, to *netmail.Address, subject string,
	text, html executor, data templateData) error {
	raw, err := m.compose(to, subject, text, html, data)
	if err != nil {
		return fmt.Errorf("mail: %s: %w", kind, err)
	}
	start := time.Now()
	domain := recipientDomain(to.Address)
	if err := m.deliver(ctx, to.Address, raw); err != nil {
		m.logger.WarnContext(ctx, "mail not sent", "kind", kind, "recipient_domain", domain, "err", err)
		return fmt.Errorf("mail: %s to a recipient at %s: %w", kind, domain, err)
	}
	m.logger.InfoContext(ctx, "mail sent", "kind", kind, "recipient_domain", domain,
		"duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// hasControl reports whether s contains CR, LF or another control
// character — the raw material of header injection.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func recipientDomain(addr string) string {
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		return addr[at+1:]
	}
	return ""
}
