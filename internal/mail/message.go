package mail

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	htmltemplate "html/template"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"net/url"
	"strings"
	texttemplate "text/template"
	"time"
)

// templateFS is the one package variable: go:embed needs one, and it is
// read-only, so it is as constant as the files it holds.
//
//go:embed templates/*
var templateFS embed.FS

// executor is what text/template and html/template have in common.
type executor interface {
	Execute(w io.Writer, data any) error
}

// templates holds the parsed bodies; parsed per Mailer rather than in a
// package variable so that the package keeps no global state.
type templates struct {
	invitationText, resetText, noticeText executor
	invitationHTML, resetHTML, noticeHTML executor
}

func parseTemplates() (*templates, error) {
	var t templates
	var err error
	parseText := func(name string) executor {
		if err != nil {
			return nil
		}
		var tt *texttemplate.Template
		tt, err = texttemplate.ParseFS(templateFS, "templates/"+name)
		return tt
	}
	// html/template escapes per context: the link lands in an href
	// attribute and in text, and each gets the right escaping.
	parseHTML := func(name string) executor {
		if err != nil {
			return nil
		}
		var ht *htmltemplate.Template
		ht, err = htmltemplate.ParseFS(templateFS, "templates/"+name)
		return ht
	}
	t.invitationText = parseText("invitation.txt")
	t.invitationHTML = parseHTML("invitation.html")
	t.resetText = parseText("password_reset.txt")
	t.resetHTML = parseHTML("password_reset.html")
	t.noticeText = parseText("security_notice.txt")
	t.noticeHTML = parseHTML("security_notice.html")
	if err != nil {
		return nil, fmt.Errorf("mail: parse templates: %w", err)
	}
	return &t, nil
}

// templateData is what the body templates see.
type templateData struct {
	ProductName string
	Recipient   string
	Link        string
	InvitedBy   string
	ExpiresAt   string
	// What and When describe a security notice.
	What string
	When string
}

// expiryLayout renders e.g. "Friday, 4 December 2026 at 13:05 UTC".
const expiryLayout = "Monday, 2 January 2006 at 15:04 MST"

// prepare validates the fields every message shares. Errors never quote
// the link: it is a bearer secret.
func (m *Mailer) prepare(rawTo, link string, expires time.Time) (*netmail.Address, templateData, error) {
	// net/mail accepts folding whitespace, so CR/LF must be refused first.
	if hasControl(rawTo) {
		return nil, templateData{}, fmt.Errorf("%w: control character in recipient", ErrInvalid)
	}
	to, err := netmail.ParseAddress(rawTo)
	if err != nil {
		return nil, templateData{}, fmt.Errorf("%w: recipient address: %w", ErrInvalid, err)
	}
	if err := checkLink(link); err != nil {
		return nil, templateData{}, err
	}
	if expires.IsZero() {
		return nil, templateData{}, fmt.Errorf("%w: expiry time missing", ErrInvalid)
	}
	return to, templateData{
		ProductName: m.opts.ProductName,
		Recipient:   to.Address,
		Link:        link,
		ExpiresAt:   expires.UTC().Format(expiryLayout),
	}, nil
}

// checkLink accepts only absolute http(s) URLs without whitespace, so a
// mail can never carry a relative, javascript: or line-breaking "link".
func checkLink(link string) error {
	if link == "" {
		return fmt.Errorf("%w: link missing", ErrInvalid)
	}
	if hasControl(link) || strings.ContainsAny(link, " \u00a0") {
		return fmt.Errorf("%w: link contains whitespace or control characters", ErrInvalid)
	}
	u, err := url.Parse(link)
	if err != nil {
		return fmt.Errorf("%w: link is not a valid URL", ErrInvalid)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%w: link must be an absolute http(s) URL", ErrInvalid)
	}
	return nil
}

// compose renders both bodies and assembles the RFC 5322 message.
func (m *Mailer) compose(to *netmail.Address, subject string, text, html executor, data templateData) ([]byte, error) {
	var textBody, htmlBody bytes.Buffer
	if err := text.Execute(&textBody, data); err != nil {
		return nil, fmt.Errorf("render text body: %w", err)
	}
	if err := html.Execute(&htmlBody, data); err != nil {
		return nil, fmt.Errorf("render HTML body: %w", err)
	}
	msgID, err := m.messageID()
	if err != nil {
		return nil, err
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range []struct {
		contentType string
		content     []byte
	}{{"text/plain; charset=utf-8", textBody.Bytes()}, {"text/html; charset=utf-8", htmlBody.Bytes()}} {
		if err := writePart(mw, p.contentType, p.content); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("close multipart: %w", err)
	}

	var msg bytes.Buffer
	// Every value below is either built by net/mail or mime (which encode
	// non-ASCII and cannot emit CR/LF) or was checked by hasControl.
	headers := [][2]string{
		{"From", m.from.String()},
		{"To", to.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", subject)},
		{"Date", time.Now().Format(time.RFC1123Z)},
		{"Message-ID", msgID},
		{"MIME-Version", "1.0"},
		{"Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()})},
		// RFC 3834: suppresses vacation auto-replies to a no-reply sender.
		{"Auto-Submitted", "auto-generated"},
	}
	for _, h := range headers {
		if hasControl(h[1]) {
			return nil, fmt.Errorf("%w: control character in %s header", ErrInvalid, h[0])
		}
		v := h[1]
		if h[0] == "Content-Type" {
			v = foldParams(v)
		}
		msg.WriteString(h[0] + ": " + v + "\r\n")
	}
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}

// foldParams folds a header value before each "; param" so that a long
// parameter, such as the 60-character multipart boundary, does not push
// the line past RFC 5322's recommended 78 characters.
func foldParams(v string) string {
	return strings.ReplaceAll(v, "; ", ";\r\n\t")
}

// writePart adds one quoted-printable part. Quoted-printable keeps the
// bodies readable in raw form and keeps every line under 78 octets, which
// long links would otherwise exceed.
func writePart(mw *multipart.Writer, contentType string, content []byte) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", contentType)
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	pw, err := mw.CreatePart(h)
	if err != nil {
		return fmt.Errorf("create %s part: %w", contentType, err)
	}
	qp := quotedprintable.NewWriter(pw)
	if _, err := qp.Write(content); err != nil {
		return fmt.Errorf("encode %s part: %w", contentType, err)
	}
	if err := qp.Close(); err != nil {
		return fmt.Errorf("encode %s part: %w", contentType, err)
	}
	return nil
}

// messageID returns a unique "<random@sender-domain>".
func (m *Mailer) messageID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("message id: %w", err)
	}
	return "<" + hex.EncodeToString(b[:]) + "@" + m.domain + ">", nil
}
