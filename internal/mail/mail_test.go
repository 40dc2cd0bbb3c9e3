package mail_test

import (
	"bytes"
	"html"
	"log/slog"
	"mime"
	netmail "net/mail"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/mail"
)

const (
	sender    = "noreply@keygate.example.test"
	recipient = "alice@example.test"
	inviteURL = "https://keygate.example.test/ui/onboarding?id=2f1c9a7e-8d4b-4c61-9f0e-5b3a1d2c7e90"
	resetURL  = "https://keygate.example.test/ui/reset-password?token=kg-reset-0123456789abcdef0123456789abcdef"
)

// expires is 12:05 UTC, given in another zone to prove the mail says UTC.
func expiresAt() time.Time { return time.Date(2026, 12, 4, 13, 5, 0, 0, time.FixedZone("CET", 3600)) }

// newMailer builds a Mailer for 127.0.0.1:port with overrides applied.
func newMailer(t *testing.T, port int, edit func(*mail.Options)) *mail.Mailer {
	t.Helper()
	o := mail.Options{Host: "127.0.0.1", Port: port, TLS: mail.TLSNone, From: sender,
		Timeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	if edit != nil {
		edit(&o)
	}
	m, err := mail.New(o)
	require.NoError(t, err)
	require.True(t, m.Enabled())
	return m
}

func invitation() mail.Invitation {
	return mail.Invitation{To: recipient, Link: inviteURL, InvitedBy: "admin@example.test", ExpiresAt: expiresAt()}
}

func TestMailInvitationDelivered(t *testing.T) {
	be, port := startServer(t, serverOpts{})
	m := newMailer(t, port, nil)
	require.NoError(t, m.SendInvitation(t.Context(), invitation()))

	msgs := be.messages()
	require.Len(t, msgs, 1)
	got := msgs[0]
	require.Equal(t, sender, got.from)
	require.Equal(t, []string{recipient}, got.rcpt)
	require.Equal(t, "keygate", got.helo)
	require.LessOrEqual(t, maxLineLen(got.data), 78, "RFC 5322 line length")

	p := parse(t, got.data)
	to, err := netmail.ParseAddress(p.header.Get("To"))
	require.NoError(t, err)
	require.Equal(t, recipient, to.Address)
	from, err := netmail.ParseAddress(p.header.Get("From"))
	require.NoError(t, err)
	require.Equal(t, sender, from.Address)
	require.Equal(t, "Keygate", from.Name)
	require.Equal(t, "You're invited to Keygate", p.header.Get("Subject"))
	require.Equal(t, "1.0", p.header.Get("MIME-Version"))
	date, err := p.header.Date()
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), date, time.Minute)
	require.Regexp(t, `^<[0-9a-f]{32}@keygate\.example\.test>$`, p.header.Get("Message-ID"))

	require.Len(t, p.parts, 2)
	text := p.parts["text/plain"]
	require.Contains(t, text, "\n"+inviteURL+"\n", "the full link, alone on its line")
	require.Contains(t, text, "Friday, 4 December 2026 at 12:05 UTC")
	require.Contains(t, text, "admin@example.test has invited you")
	require.Contains(t, text, "Not expecting this?")
	htm := p.parts["text/html"]
	require.Contains(t, htm, `href="`+inviteURL+`"`)
	require.Contains(t, htm, ">"+inviteURL+"</a>")
	require.Contains(t, htm, "Friday, 4 December 2026 at 12:05 UTC")

	// A second message gets its own Message-ID.
	require.NoError(t, m.SendInvitation(t.Context(), invitation()))
	msgs = be.messages()
	require.Len(t, msgs, 2)
	require.NotEqual(t, p.header.Get("Message-ID"), parse(t, msgs[1].data).header.Get("Message-ID"))
}

func TestMailPasswordResetDelivered(t *testing.T) {
	be, port := startServer(t, serverOpts{})
	m := newMailer(t, port, func(o *mail.Options) { o.ProductName = "Acme AI Gateway" })
	require.NoError(t, m.SendPasswordReset(t.Context(), mail.PasswordReset{To: "Bob <bob@example.test>", Link: resetURL, ExpiresAt: expiresAt()}))

	msgs := be.messages()
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"bob@example.test"}, msgs[0].rcpt)
	p := parse(t, msgs[0].data)
	require.Equal(t, "Reset your Acme AI Gateway password", p.header.Get("Subject"))
	require.Contains(t, p.header.Get("To"), "bob@example.test")
	require.Contains(t, p.parts["text/plain"], "\n"+resetURL+"\n")
	require.Contains(t, p.parts["text/plain"], "your password stays")
	require.Contains(t, p.parts["text/html"], `href="`+resetURL+`"`)
	require.Contains(t, p.parts["text/html"], "12:05 UTC")
}

func TestMailUTF8(t *testing.T) {
	be, port := startServer(t, serverOpts{})
	m := newMailer(t, port, func(o *mail.Options) { o.ProductName = "Schlüsselgatter" })
	inv := invitation()
	inv.To = "Zoë Müller <zoe@example.test>"
	inv.InvitedBy = "Jürgen"
	require.NoError(t, m.SendInvitation(t.Context(), inv))

	raw := be.messages()[0].data
	require.Equal(t, -1, bytes.IndexFunc(raw, func(r rune) bool { return r > 127 }), "message is 7-bit clean")
	p := parse(t, raw)
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(p.header.Get("Subject"))
	require.NoError(t, err)
	require.Equal(t, "You're invited to Schlüsselgatter", subject)
	to, err := netmail.ParseAddress(p.header.Get("To"))
	require.NoError(t, err)
	require.Equal(t, "Zoë Müller", to.Name)
	require.Contains(t, p.parts["text/plain"], "Jürgen has invited you to Schlüsselgatter")
}

func TestMailRejectsInjection(t *testing.T) {
	be, port := startServer(t, serverOpts{})
	m := newMailer(t, port, nil)
	for name, edit := range map[string]func(*mail.Invitation){
		"CRLF in To":          func(i *mail.Invitation) { i.To = "alice@example.test\r\nBcc: eve@evil.test" },
		"LF in To":            func(i *mail.Invitation) { i.To = "alice@example.test\nSubject: pwned" },
		"CR in To name":       func(i *mail.Invitation) { i.To = "Alice\r <alice@example.test>" },
		"two recipients":      func(i *mail.Invitation) { i.To = "alice@example.test, eve@evil.test" },
		"not an address":      func(i *mail.Invitation) { i.To = "alice" },
		"LF in inviter":       func(i *mail.Invitation) { i.InvitedBy = "admin\n\nClick https://evil.test" },
		"CRLF in link":        func(i *mail.Invitation) { i.Link = inviteURL + "\r\nBcc: eve@evil.test" },
		"space in link":       func(i *mail.Invitation) { i.Link = inviteURL + " x" },
		"javascript link":     func(i *mail.Invitation) { i.Link = "javascript:alert(1)" },
		"relative link":       func(i *mail.Invitation) { i.Link = "/ui/onboarding?id=x" },
		"bare base URL":       func(i *mail.Invitation) { i.Link = "" },
		"missing expiry time": func(i *mail.Invitation) { i.ExpiresAt = time.Time{} },
	} {
		t.Run(name, func(t *testing.T) {
			inv := invitation()
			edit(&inv)
			err := m.SendInvitation(t.Context(), inv)
			require.ErrorIs(t, err, mail.ErrInvalid)
			require.NotContains(t, err.Error(), inviteURL, "errors never quote the link")
		})
	}
	err := m.SendPasswordReset(t.Context(), mail.PasswordReset{To: "bob@example.test\r\nBcc: eve@evil.test", Link: resetURL, ExpiresAt: expiresAt()})
	require.ErrorIs(t, err, mail.ErrInvalid)
	require.Empty(t, be.messages())

	_, err = mail.New(mail.Options{Host: "127.0.0.1", From: sender, ProductName: "Keygate\r\nBcc: eve@evil.test"})
	require.ErrorIs(t, err, mail.ErrConfig)
	_, err = mail.New(mail.Options{Host: "127.0.0.1", From: "noreply@keygate.example.test\r\nBcc: eve@evil.test"})
	require.ErrorIs(t, err, mail.ErrConfig)
}

func TestMailHTMLEscapesLink(t *testing.T) {
	be, port := startServer(t, serverOpts{})
	m := newMailer(t, port, nil)
	link := `https://keygate.example.test/ui/onboarding?id=abc&next="><script>alert(1)</script>`
	inv := invitation()
	inv.Link = link
	inv.InvitedBy = `<b>Mallory</b> & "friends"`
	require.NoError(t, m.SendInvitation(t.Context(), inv))

	p := parse(t, be.messages()[0].data)
	require.Contains(t, p.parts["text/plain"], "\n"+link+"\n", "text part carries the link verbatim")

	htm := p.parts["text/html"]
	require.NotContains(t, htm, link)
	require.NotContains(t, htm, "<script>")
	require.NotContains(t, htm, "<b>Mallory")
	require.Contains(t, htm, "&lt;b&gt;Mallory&lt;/b&gt; &amp; &#34;friends&#34;")
	require.Contains(t, htm, html.EscapeString(link), "visible link is entity-escaped")

	// Every href, once HTML-unescaped, is the same URL with the same query.
	want, err := url.Parse(link)
	require.NoError(t, err)
	hrefs := regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(htm, -1)
	require.Len(t, hrefs, 2)
	for _, h := range hrefs {
		require.Contains(t, h[1], "&amp;", "& in an attribute is escaped")
		got, err := url.Parse(html.UnescapeString(h[1]))
		require.NoError(t, err)
		require.Equal(t, want.Scheme+"://"+want.Host+want.Path, got.Scheme+"://"+got.Host+got.Path)
		require.Equal(t, want.Query(), got.Query())
	}
}

func TestMailNeverLogsLink(t *testing.T) {
	be, port := startServer(t, serverOpts{})
	var logs bytes.Buffer
	m := newMailer(t, port, func(o *mail.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	require.NoError(t, m.SendInvitation(t.Context(), invitation()))
	require.Len(t, be.messages(), 1)

	down := newMailer(t, closedPort(t), func(o *mail.Options) { o.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	require.Error(t, down.SendPasswordReset(t.Context(), mail.PasswordReset{To: recipient, Link: resetURL, ExpiresAt: expiresAt()}))

	out := logs.String()
	require.Contains(t, out, `"msg":"mail sent"`)
	require.Contains(t, out, `"msg":"mail not sent"`)
	require.Contains(t, out, `"recipient_domain":"example.test"`)
	for _, secret := range []string{inviteURL, resetURL, "2f1c9a7e", "kg-reset", "alice@"} {
		require.NotContains(t, out, secret)
	}
}

func TestMailNew(t *testing.T) {
	var nilMailer *mail.Mailer
	require.False(t, nilMailer.Enabled())
	require.ErrorIs(t, nilMailer.SendInvitation(t.Context(), invitation()), mail.ErrDisabled)

	off, err := mail.New(mail.Options{From: sender})
	require.NoError(t, err, "no host means e-mail is off, which is not an error")
	require.False(t, off.Enabled())
	require.ErrorIs(t, off.SendPasswordReset(t.Context(), mail.PasswordReset{To: recipient, Link: resetURL, ExpiresAt: expiresAt()}), mail.ErrDisabled)

	for name, o := range map[string]mail.Options{
		"no sender":         {Host: "smtp.example.test"},
		"bad sender":        {Host: "smtp.example.test", From: "keygate"},
		"bad TLS mode":      {Host: "smtp.example.test", From: sender, TLS: "yes"},
		"bad port":          {Host: "smtp.example.test", From: sender, Port: 70000},
		"host with port":    {Host: "smtp.example.test:25", From: sender},
		"host with path":    {Host: "smtp.example.test/25", From: sender},
		"password, no user": {Host: "smtp.example.test", From: sender, Password: "p"},
		"negative timeout":  {Host: "smtp.example.test", From: sender, Timeout: -time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := mail.New(o)
			require.ErrorIs(t, err, mail.ErrConfig)
		})
	}

	// Display names in From are kept; the TLS mode is case-insensitive.
	be, port := startServer(t, serverOpts{})
	m := newMailer(t, port, func(o *mail.Options) { o.From = "Keygate Ops <ops@keygate.example.test>"; o.TLS = "NONE" })
	require.NoError(t, m.SendInvitation(t.Context(), invitation()))
	from, err := netmail.ParseAddress(parse(t, be.messages()[0].data).header.Get("From"))
	require.NoError(t, err)
	require.Equal(t, "Keygate Ops", from.Name)
	require.Equal(t, "ops@keygate.example.test", be.messages()[0].from)
	require.True(t, strings.HasSuffix(parse(t, be.messages()[0].data).header.Get("Message-ID"), "@keygate.example.test>"))
}
