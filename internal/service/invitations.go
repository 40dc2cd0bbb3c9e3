package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// Invitation purposes as stored.
const (
	purposeInvitation = "invitation"
	purposeReset      = "password_reset"
)

// Mailer sends invitation and password-reset mail (internal/mail).
type Mailer interface {
	Enabled() bool
	SendInvitation(ctx context.Context, to, link, invitedBy string, expires time.Time) error
	SendPasswordReset(ctx context.Context, to, link string, expires time.Time) error
}

// InvitationOptions configures invitations and password resets.
type InvitationOptions struct {
	// TTL is how long an invitation is valid (default 7 days, exactly).
	TTL time.Duration
	// ResetTTL is how long a password-reset link is valid (default 30 min).
	ResetTTL time.Duration
	// BaseURL is the public base of every link that leaves the server
	// (PROXY_BASE_URL, or what cmd derived from the listen address). It
	// comes from configuration only: a request's Host header never
	// chooses where a reset or invitation link points.
	BaseURL string
	Mailer  Mailer
	// ResetPerEmail / ResetPerIP cap reset requests per hour.
	ResetPerEmail, ResetPerIP int64
}

// NewInvitation is /invitation/new's body.
type NewInvitation struct {
	UserID    string `json:"user_id"`
	SendEmail *bool  `json:"send_email"`
	// OnlyNew refuses a user who has already signed in (UserStatus
	// "active"): an invitation would greet them as new and replace their
	// password. The web UI sets it; /invitation/new keeps LiteLLM's
	// behaviour and does not.
	OnlyNew bool `json:"-"`
}

// IssuedInvitation is a created invitation with its secret id and link,
// which exist only in this answer (the store keeps a hash).
type IssuedInvitation struct {
	Invitation store.Invitation
	ID         string
	Link       string
	UserEmail  string
	// MailSent / MailError report the optional e-mail; a mail failure
	// never undoes the invitation.
	MailSent  bool
	MailError string
}

// HashSecret is how invitation ids and reset tokens are stored.
func HashSecret(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// link is the absolute URL of a path under the configured base.
func (s *Service) link(path string) string {
	return strings.TrimSuffix(s.invites.BaseURL, "/") + path
}

// InvitationLink is the onboarding URL for an invitation id.
func (s *Service) InvitationLink(id string) string {
	return s.link("/ui/onboarding?id=" + url.QueryEscape(id))
}

// CreateInvitation makes a single-use link for an existing user (admins
// only), superseding the user's older invitations, and optionally mails it.
func (s *Service) CreateInvitation(ctx context.Context, p auth.Principal, in NewInvitation) (IssuedInvitation, error) {
	if err := require(p, rbac.PermInvitationWrite); err != nil {
		return IssuedInvitation{}, err
	}
	if err := validID("user_id", in.UserID); err != nil {
		return IssuedInvitation{}, err
	}
	u, err := s.store.GetUser(ctx, in.UserID)
	if err != nil {
		return IssuedInvitation{}, notFound(err, "User %q does not exist; create it with /user/new first.", truncate(in.UserID, 80))
	}
	if in.OnlyNew && UserStatus(u) != "invited" {
		return IssuedInvitation{}, apperr.Conflict("%s has already signed in, so an invitation would replace their password; send a password reset instead.",
			userLabel(u))
	}
	now := s.Now()
	id := uuid.NewString() // 122 random bits from crypto/rand
	inv := store.Invitation{IDHash: HashSecret(id), UserID: u.ID, Purpose: purposeInvitation, ExpiresAt: now.Add(s.invites.TTL),
		CreatedAt: now, CreatedBy: p.ActorID(), UpdatedAt: now, UpdatedBy: p.ActorID()}
	err = s.store.Tx(ctx, func(tx store.Store) error {
		if err := tx.CreateInvitation(ctx, &inv); err != nil {
			return fmt.Errorf("service: create invitation: %w", err)
		}
		return s.audit(ctx, tx, p, "invitation.created", "user", u.ID, nil, map[string]any{"expires_at": inv.ExpiresAt})
	})
	if err != nil {
		return IssuedInvitation{}, err
	}
	out := IssuedInvitation{Invitation: inv, ID: id, Link: s.InvitationLink(id), UserEmail: u.Email}
	if in.SendEmail != nil && *in.SendEmail {
		out.MailSent, out.MailError = s.mailInvitation(ctx, p, u, out.Link, inv.ExpiresAt)
	}
	return out, nil
}

func userLabel(u store.User) string {
	if u.Email != "" {
		return u.Email
	}
	return u.ID
}

// mailInvitation sends the invitation and reports the outcome instead of
// failing: the invitation exists whatever happens to the mail.
func (s *Service) mailInvitation(ctx context.Context, p auth.Principal, u store.User, link string, expires time.Time) (bool, string) {
	switch {
	case s.invites.Mailer == nil || !s.invites.Mailer.Enabled():
		return false, "E-mail is not configured (set SMTP_HOST and SMTP_SENDER_EMAIL); share the invitation link instead."
	case u.Email == "":
		return false, "The user has no e-mail address; share the invitation link instead."
	}
	invitedBy := p.Email
	if err := s.invites.Mailer.SendInvitation(ctx, u.Email, link, invitedBy, expires); err != nil {
		s.log.Error("invitation e-mail failed", "user_id", u.ID, "err", err)
		return false, "The invitation was created but the e-mail could not be sent; share the link instead."
	}
	return true, ""
}

func (s *Service) invitationByID(ctx context.Context, st store.Store, id string) (store.Invitation, error) {
	id = strings.TrimSpace(id)
	if id == "" || len(id) > 200 {
		return store.Invitation{}, apperr.InvalidParam("invitation_id", "invitation_id is required.")
	}
	inv, err := st.GetInvitation(ctx, HashSecret(id))
	if err != nil {
		return store.Invitation{}, notFound(err, "Invitation not found.")
	}
	if inv.Purpose == purposeReset {
		return store.Invitation{}, apperr.NotFound("Invitation not found.")
	}
	return inv, nil
}

// GetInvitation returns an invitation by its id (admins and admin viewers).
func (s *Service) GetInvitation(ctx context.Context, p auth.Principal, id string) (store.Invitation, error) {
	if err := require(p, rbac.PermReadAll); err != nil {
		return store.Invitation{}, err
	}
	return s.invitationByID(ctx, s.store, id)
}

// UpdateInvitation marks an invitation accepted or not (admins only).
// Marking it accepted makes the link unusable.
func (s *Service) UpdateInvitation(ctx context.Context, p auth.Principal, id string, accepted bool) (store.Invitation, error) {
	if err := require(p, rbac.PermInvitationWrite); err != nil {
		return store.Invitation{}, err
	}
	var out store.Invitation
	err := s.store.Tx(ctx, func(tx store.Store) error {
		inv, err := s.invitationByID(ctx, tx, id)
		if err != nil {
			return err
		}
		now := s.Now()
		out, err = tx.UpdateInvitation(ctx, inv.IDHash, func(i *store.Invitation) error {
			i.IsAccepted = accepted
			if accepted && i.AcceptedAt == nil {
				i.AcceptedAt = &now
			}
			if !accepted {
				i.AcceptedAt = nil
			}
			i.UpdatedAt, i.UpdatedBy = now, p.ActorID()
			return nil
		})
		if err != nil {
			return notFound(err, "Invitation not found.")
		}
		return s.audit(ctx, tx, p, "invitation.updated", "user", inv.UserID, nil, map[string]any{"is_accepted": accepted})
	})
	return out, err
}

// DeleteInvitation revokes an invitation (admins only).
func (s *Service) DeleteInvitation(ctx context.Context, p auth.Principal, id string) (store.Invitation, error) {
	return s.revokeInvitation(ctx, p, func(tx store.Store) (store.Invitation, error) { return s.invitationByID(ctx, tx, id) })
}

// RevokeInvitation is DeleteInvitation for an invitation named by its
// stored hash, which listings carry (the link's id is never stored).
func (s *Service) RevokeInvitation(ctx context.Context, p auth.Principal, idHash string) (store.Invitation, error) {
	return s.revokeInvitation(ctx, p, func(tx store.Store) (store.Invitation, error) {
		idHash = strings.TrimSpace(idHash)
		if idHash == "" || len(idHash) > 200 {
			return store.Invitation{}, apperr.InvalidParam("invitation_id", "invitation_id is required.")
		}
		inv, err := tx.GetInvitation(ctx, idHash)
		if err != nil {
			return store.Invitation{}, notFound(err, "Invitation not found.")
		}
		if inv.Purpose == purposeReset {
			return store.Invitation{}, apperr.NotFound("Invitation not found.")
		}
		return inv, nil
	})
}

func (s *Service) revokeInvitation(ctx context.Context, p auth.Principal, find func(tx store.Store) (store.Invitation, error)) (store.Invitation, error) {
	if err := require(p, rbac.PermInvitationWrite); err != nil {
		return store.Invitation{}, err
	}
	var out store.Invitation
	err := s.store.Tx(ctx, func(tx store.Store) error {
		inv, err := find(tx)
		if err != nil {
			return err
		}
		out = inv
		if err := tx.DeleteInvitation(ctx, inv.IDHash); err != nil {
			return notFound(err, "Invitation not found.")
		}
		return s.audit(ctx, tx, p, "invitation.deleted", "user", inv.UserID, nil, nil)
	})
	return out, err
}

// InvitationStatus classifies an invitation for listings.
func InvitationStatus(inv store.Invitation, now time.Time) string {
	switch {
	case inv.IsAccepted:
		return "accepted"
	case !now.Before(inv.ExpiresAt):
		return "expired"
	}
	return "pending"
}

// ListInvitations lists invitations (admins and admin viewers).
func (s *Service) ListInvitations(ctx context.Context, p auth.Principal, userID string, page, size int) ([]store.Invitation, int64, error) {
	if err := require(p, rbac.PermReadAll); err != nil {
		return nil, 0, err
	}
	pg, err := pageOf(page, size, 25)
	if err != nil {
		return nil, 0, err
	}
	items, total, err := s.store.ListInvitations(ctx, store.InvitationFilter{UserID: userID, Page: pg})
	if err != nil {
		return nil, 0, fmt.Errorf("service: list invitations: %w", err)
	}
	return items, total, nil
}

// errLinkUnusable is the one answer for unknown, used, superseded and
// expired links: it does not say whether the id ever existed.
var errLinkUnusable = apperr.Unauthenticated("This link is invalid, has already been used, or has expired. Ask your administrator for a new one.")

// Onboarding describes a usable invitation without consuming it.
type Onboarding struct {
	User       store.User
	Invitation store.Invitation
}

// PeekInvitation checks an invitation link for the onboarding page; it
// consumes nothing.
func (s *Service) PeekInvitation(ctx context.Context, id string) (Onboarding, error) {
	return s.peekSecret(ctx, id, purposeInvitation)
}

func (s *Service) peekSecret(ctx context.Context, id, purpose string) (Onboarding, error) {
	id = strings.TrimSpace(id)
	if id == "" || len(id) > 200 {
		return Onboarding{}, errLinkUnusable
	}
	inv, err := s.store.GetInvitation(ctx, HashSecret(id))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Onboarding{}, errLinkUnusable
		}
		return Onboarding{}, fmt.Errorf("service: get invitation: %w", err)
	}
	if inv.Purpose != purpose || inv.IsAccepted || !s.Now().Before(inv.ExpiresAt) {
		return Onboarding{}, errLinkUnusable
	}
	u, err := s.store.GetUser(ctx, inv.UserID)
	if err != nil || u.Disabled {
		return Onboarding{}, errLinkUnusable
	}
	return Onboarding{User: u, Invitation: inv}, nil
}

// ClaimInvitation sets the invited user's password and consumes the
// invitation in one transaction (of any number of concurrent claims exactly
// one wins), then signs the user in. userID, when given, must match.
func (s *Service) ClaimInvitation(ctx context.Context, id, userID, password string) (LoginResult, error) {
	return s.claimSecret(ctx, id, userID, password, purposeInvitation)
}

func (s *Service) claimSecret(ctx context.Context, id, userID, password, purpose string) (LoginResult, error) {
	ob, err := s.peekSecret(ctx, id, purpose)
	if err != nil {
		return LoginResult{}, err
	}
	if userID != "" && userID != ob.User.ID {
		return LoginResult{}, errLinkUnusable
	}
	h, err := s.hashNewPassword(ctx, password)
	if err != nil {
		return LoginResult{}, err
	}
	var u store.User
	err = s.tx(ctx, func(tx store.Store, ch *Changes) error {
		now := s.Now()
		if _, err := tx.ConsumeInvitation(ctx, ob.Invitation.IDHash, now, ob.User.ID); err != nil {
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				return errLinkUnusable
			}
			return fmt.Errorf("service: consume invitation: %w", err)
		}
		u, err = tx.UpdateUser(ctx, ob.User.ID, func(x *store.User) error { x.PasswordHash, x.UpdatedAt = h, now; return nil })
		if err != nil {
			return notFound(err, "User not found.")
		}
		if purpose == purposeReset {
			revoked, err := tx.RevokeUserSessions(ctx, u.ID, now)
			if err != nil {
				return fmt.Errorf("service: revoke sessions: %w", err)
			}
			ch.Session(revoked...)
			ch.User(u.ID)
		}
		action := "invitation.consumed"
		if purpose == purposeReset {
			action = "user.password_reset"
		}
		return s.audit(ctx, tx, auth.Principal{UserID: u.ID, Role: rbac.Role(u.Role)}, action, "user", u.ID, nil, nil)
	})
	if err != nil {
		return LoginResult{}, err
	}
	// A link proves the mailbox, not a second factor: a user who has one
	// (or whose role needs one) still gets the second step.
	return s.passwordVerified(ctx, u, "", "", "", nil)
}
