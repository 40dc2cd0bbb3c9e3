package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/store"
)

// InvitationOps is what the invitation, onboarding and reset routes need.
type InvitationOps interface {
	CreateInvitation(ctx context.Context, p auth.Principal, in service.NewInvitation) (service.IssuedInvitation, error)
	GetInvitation(ctx context.Context, p auth.Principal, id string) (store.Invitation, error)
	UpdateInvitation(ctx context.Context, p auth.Principal, id string, accepted bool) (store.Invitation, error)
	DeleteInvitation(ctx context.Context, p auth.Principal, id string) (store.Invitation, error)
	ListInvitations(ctx context.Context, p auth.Principal, userID string, page, size int) ([]store.Invitation, int64, error)
	PeekInvitation(ctx context.Context, id string) (service.Onboarding, error)
	ClaimInvitation(ctx context.Context, id, userID, password string) (service.LoginResult, error)
	InvitationLink(id string) string
	ForgotPassword(ctx context.Context, email, clientIP string) error
	ResetPassword(ctx context.Context, token, password string) (service.LoginResult, error)
	Now() time.Time
}

type invitationJSON struct {
	ID             *string    `json:"id"`
	InvitationHash string     `json:"invitation_hash"`
	UserID         string     `json:"user_id"`
	IsAccepted     bool       `json:"is_accepted"`
	AcceptedAt     *time.Time `json:"accepted_at"`
	ExpiresAt      time.Time  `json:"expires_at"`
	CreatedAt      time.Time  `json:"created_at"`
	CreatedBy      string     `json:"created_by"`
	UpdatedAt      time.Time  `json:"updated_at"`
	UpdatedBy      string     `json:"updated_by"`
	Status         string     `json:"status"`
	InvitationLink *string    `json:"invitation_link,omitempty"`
}

func invitationView(inv store.Invitation, id, link string, now time.Time) invitationJSON {
	v := invitationJSON{ID: strPtr(id), InvitationHash: inv.IDHash, UserID: inv.UserID, IsAccepted: inv.IsAccepted, AcceptedAt: inv.AcceptedAt,
		ExpiresAt: inv.ExpiresAt, CreatedAt: inv.CreatedAt, CreatedBy: inv.CreatedBy, UpdatedAt: inv.UpdatedAt, UpdatedBy: inv.UpdatedBy,
		Status: service.InvitationStatus(inv, now)}
	if link != "" {
		v.InvitationLink = &link
	}
	return v
}

func (s *Server) invitationNew(c *gin.Context) error {
	var in service.NewInvitation
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	iss, err := s.opts.Invitations.CreateInvitation(ctxOf(c), PrincipalOf(c), in)
	if err != nil {
		return err
	}
	out := structToMap(invitationView(iss.Invitation, iss.ID, iss.Link, s.opts.Invitations.Now()))
	if in.SendEmail != nil && *in.SendEmail {
		out["email_sent"] = iss.MailSent
		if iss.MailError != "" {
			out["email_error"] = iss.MailError
		}
	}
	noStore(c)
	c.JSON(http.StatusOK, out)
	return nil
}

func (s *Server) invitationInfo(c *gin.Context) error {
	id, err := requireQuery(c, "invitation_id")
	if err != nil {
		return err
	}
	inv, err := s.opts.Invitations.GetInvitation(ctxOf(c), PrincipalOf(c), id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, invitationView(inv, id, "", s.opts.Invitations.Now()))
	return nil
}

func (s *Server) invitationUpdate(c *gin.Context) error {
	var in struct {
		InvitationID string `json:"invitation_id"`
		IsAccepted   *bool  `json:"is_accepted"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.IsAccepted == nil {
		return apperr.InvalidParam("is_accepted", "is_accepted is required.")
	}
	inv, err := s.opts.Invitations.UpdateInvitation(ctxOf(c), PrincipalOf(c), in.InvitationID, *in.IsAccepted)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, invitationView(inv, in.InvitationID, "", s.opts.Invitations.Now()))
	return nil
}

func (s *Server) invitationDelete(c *gin.Context) error {
	var in struct {
		InvitationID string `json:"invitation_id"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	inv, err := s.opts.Invitations.DeleteInvitation(ctxOf(c), PrincipalOf(c), in.InvitationID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, invitationView(inv, in.InvitationID, "", s.opts.Invitations.Now()))
	return nil
}

func (s *Server) invitationList(c *gin.Context) error {
	page, size, err := pageParams(c, "page_size")
	if err != nil {
		return err
	}
	items, total, err := s.opts.Invitations.ListInvitations(ctxOf(c), PrincipalOf(c), c.Query("user_id"), page, size)
	if err != nil {
		return err
	}
	if page == 0 {
		page = 1
	}
	if size == 0 {
		size = 25
	}
	now := s.opts.Invitations.Now()
	out := make([]invitationJSON, 0, len(items))
	for _, inv := range items {
		out = append(out, invitationView(inv, "", "", now))
	}
	c.JSON(http.StatusOK, gin.H{"invitations": out, "total": total, "page": page, "page_size": size, "total_pages": totalPages(total, size)})
	return nil
}

// onboardingGetToken is LiteLLM's GET /onboarding/get_token: it checks the
// link and consumes nothing.
func (s *Server) onboardingGetToken(c *gin.Context) error {
	id := c.Query("invite_link")
	ob, err := s.opts.Invitations.PeekInvitation(ctxOf(c), id)
	if err != nil {
		return err
	}
	noStore(c)
	c.JSON(http.StatusOK, gin.H{"login_url": s.opts.Invitations.InvitationLink(id),
		"token":      onboardingToken(ob.User.ID, ob.User.Email, id, ob.Invitation.ExpiresAt),
		"user_email": strPtr(ob.User.Email), "user_id": ob.User.ID, "expires_at": ob.Invitation.ExpiresAt})
	return nil
}

// onboardingClaimToken is LiteLLM's POST /onboarding/claim_token: set the
// password and consume the invitation atomically, then sign in.
func (s *Server) onboardingClaimToken(c *gin.Context) error {
	if err := s.opts.Web.CheckOrigin(c.Request); err != nil {
		return err // it signs the browser in: no login CSRF
	}
	var in struct {
		InvitationLink string `json:"invitation_link"`
		UserID         string `json:"user_id"`
		Password       string `json:"password"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	res, err := s.opts.Invitations.ClaimInvitation(ctxOf(c), in.InvitationLink, in.UserID, in.Password)
	if err != nil {
		return s.pendingSignIn(c, err)
	}
	s.answerLogin(c, res)
	return nil
}

func (s *Server) forgotPassword(c *gin.Context) error {
	if err := s.opts.Web.CheckOrigin(c.Request); err != nil {
		return err
	}
	var in struct {
		UserEmail string `json:"user_email"`
		Email     string `json:"email"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.UserEmail == "" {
		in.UserEmail = in.Email
	}
	if err := s.opts.Invitations.ForgotPassword(ctxOf(c), in.UserEmail, c.ClientIP()); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"message": "If an account with this e-mail exists, a password reset link has been sent to it."})
	return nil
}

func (s *Server) resetPassword(c *gin.Context) error {
	if err := s.opts.Web.CheckOrigin(c.Request); err != nil {
		return err // it signs the browser in: no login CSRF
	}
	var in struct {
		Token       string `json:"token"`
		NewPassword string `json:"new_password"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	res, err := s.opts.Invitations.ResetPassword(ctxOf(c), in.Token, in.NewPassword)
	if err != nil {
		return s.pendingSignIn(c, err)
	}
	s.answerLogin(c, res)
	return nil
}
