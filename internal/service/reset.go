package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// ForgotPassword starts a self-service reset. The answer is the same, and
// takes the same work, whether or not the e-mail belongs to anyone: the
// request is counted against the e-mail and the client IP (limits per
// hour), and everything that depends on the account — the lookup, the
// token, the mail — runs after the answer. The link is only ever mailed,
// never returned, and built from the configured base URL.
func (s *Service) ForgotPassword(ctx context.Context, email, clientIP string) error {
	email = strings.TrimSpace(email)
	if email == "" || len(email) > 320 {
		return apperr.InvalidParam("user_email", "user_email is required.")
	}
	subjects := []struct {
		name  string
		limit int64
	}{{"reset-email:" + strings.ToLower(email), s.invites.ResetPerEmail}}
	if clientIP != "" {
		subjects = append(subjects, struct {
			name  string
			limit int64
		}{"reset-ip:" + clientIP, s.invites.ResetPerIP})
	}
	for _, sub := range subjects {
		if _, err := s.takeAttempt(ctx, sub.name, sub.limit, time.Hour, "Too many password reset requests"); err != nil {
			return fmt.Errorf("service: reset request: %w", err)
		}
	}
	s.background(ctx, func(ctx context.Context) {
		if err := s.mailReset(ctx, email); err != nil {
			// Same answer to the caller; the operator sees the failure.
			s.log.Error("password reset", "err", err)
		}
	})
	return nil
}

// mailReset makes a reset token for the account of email, if there is an
// enabled one, and mails its link.
func (s *Service) mailReset(ctx context.Context, email string) error {
	u, err := s.store.GetUserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("service: reset lookup: %w", err)
	}
	if !s.MailEnabled() {
		s.log.Warn("password reset requested but e-mail is not configured", "user_id", u.ID)
		return nil
	}
	inv, link, err := s.newResetToken(ctx, auth.Principal{UserID: u.ID}, u, "user.password_reset_requested")
	if err != nil {
		return err
	}
	if err := s.invites.Mailer.SendPasswordReset(ctx, u.Email, link, inv.ExpiresAt); err != nil {
		return fmt.Errorf("service: reset e-mail to user %s: %w", u.ID, err)
	}
	return nil
}

// MailEnabled reports whether invitation and reset mail can be sent
// (SMTP is configured).
func (s *Service) MailEnabled() bool {
	return s.invites.Mailer != nil && s.invites.Mailer.Enabled()
}

// newResetToken stores a reset token for u (superseding older ones),
// audited as action by p, and returns it with its link.
func (s *Service) newResetToken(ctx context.Context, p auth.Principal, u store.User, action string) (store.Invitation, string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return store.Invitation{}, "", fmt.Errorf("service: reset token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.Now()
	inv := store.Invitation{IDHash: HashSecret(token), UserID: u.ID, Purpose: purposeReset, ExpiresAt: now.Add(s.invites.ResetTTL),
		CreatedAt: now, CreatedBy: p.ActorID(), UpdatedAt: now, UpdatedBy: p.ActorID()}
	err := s.store.Tx(ctx, func(tx store.Store) error {
		if err := tx.CreateInvitation(ctx, &inv); err != nil {
			return fmt.Errorf("service: create reset token: %w", err)
		}
		return s.audit(ctx, tx, p, action, "user", u.ID, nil, nil)
	})
	if err != nil {
		return store.Invitation{}, "", err
	}
	return inv, s.link("/ui/reset-password?token=" + url.QueryEscape(token)), nil
}

// IssuedReset is a reset link an admin made: mailed to the user when
// e-mail is set up, else (or when the mail failed) for the admin to pass
// on. Link is empty when the mail went out: the link proves the mailbox.
type IssuedReset struct {
	User      store.User
	Link      string
	ExpiresAt time.Time
	MailSent  bool
	MailError string
}

// CreateResetLink makes a password-reset link for a user who has signed
// in before (admins only): for someone who never has, an invitation is
// the way in. With e-mail set up the link is mailed to the user.
func (s *Service) CreateResetLink(ctx context.Context, p auth.Principal, userID string) (IssuedReset, error) {
	if err := require(p, rbac.PermUserWrite); err != nil {
		return IssuedReset{}, err
	}
	if err := validID("user_id", userID); err != nil {
		return IssuedReset{}, err
	}
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return IssuedReset{}, notFound(err, "User %q does not exist.", truncate(userID, 80))
	}
	switch UserStatus(u) {
	case "blocked":
		return IssuedReset{}, apperr.Conflict("%s is blocked; unblock them first.", userLabel(u))
	case "invited":
		return IssuedReset{}, apperr.Conflict("%s has not signed in yet; send them an invitation link instead.", userLabel(u))
	}
	inv, link, err := s.newResetToken(ctx, p, u, "user.password_reset_link_created")
	if err != nil {
		return IssuedReset{}, err
	}
	out := IssuedReset{User: u, Link: link, ExpiresAt: inv.ExpiresAt}
	if !s.MailEnabled() || u.Email == "" {
		return out, nil
	}
	if err := s.invites.Mailer.SendPasswordReset(ctx, u.Email, link, inv.ExpiresAt); err != nil {
		s.log.Error("password reset e-mail failed", "user_id", u.ID, "err", err)
		out.MailError = "The e-mail could not be sent; pass the link on yourself."
		return out, nil
	}
	out.MailSent, out.Link = true, ""
	return out, nil
}

// PeekReset checks a reset token for the reset page without consuming it.
func (s *Service) PeekReset(ctx context.Context, token string) (Onboarding, error) {
	return s.peekSecret(ctx, token, purposeReset)
}

// ResetPassword uses a reset token once: sets the password, revokes every
// session of the user, and signs them in afresh.
func (s *Service) ResetPassword(ctx context.Context, token, password string) (LoginResult, error) {
	return s.claimSecret(ctx, token, "", password, purposeReset)
}
