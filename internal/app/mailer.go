package app

import (
	"context"
	"time"

	"github.com/keygate/keygate/internal/mail"
	"github.com/keygate/keygate/internal/service"
)

// Mailer adapts an SMTP mailer to what the service layer sends; nil (SMTP
// not configured) gives nil, so e-mail is reported as unavailable.
func Mailer(m *mail.Mailer) service.Mailer {
	if m == nil {
		return nil
	}
	return mailer{m}
}

type mailer struct{ m *mail.Mailer }

func (a mailer) Enabled() bool { return a.m.Enabled() }

func (a mailer) SendInvitation(ctx context.Context, to, link, invitedBy string, expires time.Time) error {
	return a.m.SendInvitation(ctx, mail.Invitation{To: to, Link: link, InvitedBy: invitedBy, ExpiresAt: expires})
}

func (a mailer) SendSecurityNotice(ctx context.Context, to, what string, at time.Time) error {
	return a.m.SendSecurityNotice(ctx, mail.SecurityNotice{To: to, What: what, At: at})
}

func (a mailer) SendPasswordReset(ctx context.Context, to, link string, expires time.Time) error {
	return a.m.SendPasswordReset(ctx, mail.PasswordReset{To: to, Link: link, ExpiresAt: expires})
}
