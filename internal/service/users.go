package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// DefaultNewUserRole is given to users created without user_role. It is the
// least privileged role: nobody gains key-writing rights by omission.
const DefaultNewUserRole = rbac.RoleInternalUserViewer

// NewUser is the input of CreateUser (LiteLLM's /user/new body). Pointer
// fields distinguish "absent" from zero values.
type NewUser struct {
	UserID         *string        `json:"user_id"`
	UserEmail      *string        `json:"user_email"`
	UserAlias      *string        `json:"user_alias"`
	UserRole       *string        `json:"user_role"`
	Teams          TeamRefs       `json:"teams"`
	MaxBudget      *float64       `json:"max_budget"`
	BudgetDuration *string        `json:"budget_duration"`
	Models         []string       `json:"models"`
	TPMLimit       *int64         `json:"tpm_limit"`
	RPMLimit       *int64         `json:"rpm_limit"`
	Metadata       map[string]any `json:"metadata"`
	// AutoCreateKey (default true, as in LiteLLM) also creates the user's
	// first key, returned once in CreatedUser.Key.
	AutoCreateKey *bool `json:"auto_create_key"`
	// SendInviteEmail also creates an invitation and mails its link.
	SendInviteEmail *bool   `json:"send_invite_email"`
	Password        *string `json:"password"`
	// Invite also creates an invitation (not mailed unless
	// SendInviteEmail); the web UI sets it, the JSON API cannot.
	Invite bool `json:"-"`
}

// CreatedUser is what CreateUser made: the user and, when asked for, its
// first key (with the raw value, shown once) and an invitation.
type CreatedUser struct {
	UserDetail
	Key        *IssuedKey
	Invitation *IssuedInvitation
}

// UserUpdate is the input of UpdateUser (LiteLLM's /user/update body).
type UserUpdate struct {
	UserID         *string        `json:"user_id"`
	UserEmail      *string        `json:"user_email"`
	UserAlias      *string        `json:"user_alias"`
	UserRole       *string        `json:"user_role"`
	MaxBudget      *float64       `json:"max_budget"`
	BudgetDuration *string        `json:"budget_duration"`
	Models         []string       `json:"models"`
	TPMLimit       *int64         `json:"tpm_limit"`
	RPMLimit       *int64         `json:"rpm_limit"`
	Metadata       map[string]any `json:"metadata"`
	Password       *string        `json:"password"`
	// Disabled blocks the user: their keys and sessions stop working.
	Disabled *bool `json:"blocked"`
}

// UserDetail is a user with the ids of the teams they belong to.
type UserDetail struct {
	User        store.User
	Memberships []store.Membership
}

// TeamIDs lists the user's teams.
func (d UserDetail) TeamIDs() []string {
	ids := make([]string, 0, len(d.Memberships))
	for _, m := range d.Memberships {
		ids = append(ids, m.TeamID)
	}
	return ids
}

func (in *NewUser) validate() error {
	if in.UserID != nil {
		if err := validID("user_id", *in.UserID); err != nil {
			return err
		}
	}
	if in.UserEmail != nil && *in.UserEmail != "" {
		if err := validEmail("user_email", *in.UserEmail); err != nil {
			return err
		}
	}
	if in.UserAlias != nil {
		if err := validAlias("user_alias", *in.UserAlias); err != nil {
			return err
		}
	}
	if in.UserRole != nil {
		if _, err := validRole("user_role", *in.UserRole); err != nil {
			return err
		}
	}
	if err := errors.Join(validBudget("max_budget", in.MaxBudget), validDuration("budget_duration", in.BudgetDuration),
		validModels("models", in.Models), validLimit("tpm_limit", in.TPMLimit), validLimit("rpm_limit", in.RPMLimit)); err != nil {
		return firstPublic(err)
	}
	for i, t := range in.Teams {
		if err := validID("teams", t.TeamID); err != nil {
			return err
		}
		if _, err := validTeamRole("teams", t.Role); err != nil {
			return err
		}
		if err := validBudget("teams", t.MaxBudgetInTeam); err != nil {
			return err
		}
		_ = i
	}
	return nil
}

// firstPublic returns the first public error of a joined error, so the
// client gets one clear message naming one field.
func firstPublic(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if e != nil {
				return e
			}
		}
	}
	return err
}

// CreateUser creates a user (admin only) with, in the same transaction,
// the team memberships named in in.Teams (every named team must exist),
// the user's first key (unless auto_create_key is false) and an
// invitation (send_invite_email or Invite; the caller then needs the
// invitation permission too). Either all of it exists afterwards or none
// of it. The invitation mail is sent after the commit; a mail failure is
// reported in the invitation, never undoes it.
func (s *Service) CreateUser(ctx context.Context, p auth.Principal, in NewUser) (CreatedUser, error) {
	if err := require(p, rbac.PermUserWrite); err != nil {
		return CreatedUser{}, err
	}
	if err := in.validate(); err != nil {
		return CreatedUser{}, err
	}
	withKey := in.AutoCreateKey == nil || *in.AutoCreateKey
	mail := in.SendInviteEmail != nil && *in.SendInviteEmail
	invite := in.Invite || mail
	if invite {
		if err := require(p, rbac.PermInvitationWrite); err != nil {
			return CreatedUser{}, err
		}
	}
	now := s.Now()
	u := store.User{ID: s.newID(), Role: string(DefaultNewUserRole), Models: in.Models, MaxBudget: in.MaxBudget,
		TPMLimit: in.TPMLimit, RPMLimit: in.RPMLimit, Metadata: in.Metadata, CreatedAt: now, UpdatedAt: now}
	if in.UserID != nil {
		u.ID = *in.UserID
	}
	if in.UserEmail != nil {
		u.Email = *in.UserEmail
	}
	if in.UserAlias != nil {
		u.Alias = *in.UserAlias
	}
	if in.UserRole != nil {
		u.Role = *in.UserRole
	}
	if in.BudgetDuration != nil && *in.BudgetDuration != "" {
		d, _ := ParseDuration(*in.BudgetDuration)
		u.BudgetDuration = *in.BudgetDuration
		reset := now.Add(d)
		u.BudgetResetAt = &reset
	}
	if in.Password != nil {
		h, err := s.hashNewPassword(ctx, *in.Password)
		if err != nil {
			return CreatedUser{}, err
		}
		u.PasswordHash = h
	}
	var out CreatedUser
	var hooks *pendingHooks
	err := s.store.Tx(ctx, func(tx store.Store) error {
		if err := tx.CreateUser(ctx, &u); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("A user with this user_id or user_email already exists.").Wrap(err)
			}
			return fmt.Errorf("service: create user: %w", err)
		}
		for _, t := range in.Teams {
			if _, err := tx.GetTeam(ctx, t.TeamID); err != nil {
				return notFound(err, "Team %q not found.", t.TeamID)
			}
			role, _ := validTeamRole("teams", t.Role)
			if err := tx.PutMembership(ctx, store.Membership{TeamID: t.TeamID, UserID: u.ID, Role: string(role),
				MaxBudgetInTeam: t.MaxBudgetInTeam, CreatedAt: now}); err != nil {
				return fmt.Errorf("service: add membership: %w", err)
			}
		}
		ms, err := tx.ListMembershipsByUser(ctx, u.ID)
		if err != nil {
			return fmt.Errorf("service: list memberships: %w", err)
		}
		out = CreatedUser{UserDetail: UserDetail{User: u, Memberships: ms}}
		if err := s.audit(ctx, tx, p, "user.created", "user", u.ID, nil, userSummary(u)); err != nil {
			return err
		}
		var in2 *Service
		in2, hooks = s.within(tx)
		if withKey {
			uid := u.ID
			req := KeyRequest{UserID: &uid}
			if len(u.Models) > 0 {
				req.Models = u.Models
			}
			k, err := in2.GenerateKey(ctx, p, req)
			if err != nil {
				return err
			}
			out.Key = &k
		}
		if invite {
			iss, err := in2.CreateInvitation(ctx, p, NewInvitation{UserID: u.ID})
			if err != nil {
				return err
			}
			out.Invitation = &iss
		}
		return nil
	})
	if err != nil {
		return CreatedUser{}, err
	}
	s.fire(ctx, hooks)
	if mail && out.Invitation != nil {
		out.Invitation.MailSent, out.Invitation.MailError = s.mailInvitation(ctx, p, u, out.Invitation.Link, out.Invitation.Invitation.ExpiresAt)
	}
	return out, nil
}

func (s *Service) hashNewPassword(ctx context.Context, pw string) (string, error) {
	if s.passwords == nil {
		return "", apperr.InvalidParam("password", "Password login is not available on this server.")
	}
	if err := ValidatePassword(pw); err != nil {
		return "", err
	}
	h, err := s.passwords.Hash(ctx, pw)
	if err != nil {
		return "", fmt.Errorf("service: hash password: %w", err)
	}
	return h, nil
}

// ValidatePassword enforces the password length rules (8 to 128
// characters).
func ValidatePassword(pw string) error {
	n := len([]rune(pw))
	if n < 8 {
		return apperr.InvalidParam("password", "The password must be at least 8 characters long.")
	}
	if n > 128 {
		return apperr.InvalidParam("password", "The password must be at most 128 characters long.")
	}
	return nil
}

// userSummary is the audit view of a user: never the password hash.
func userSummary(u store.User) map[string]any {
	return map[string]any{"user_id": u.ID, "user_email": u.Email, "user_role": u.Role, "user_alias": u.Alias,
		"disabled": u.Disabled, "models": u.Models, "max_budget": u.MaxBudget}
}

// canSeeUser: admins and viewers see everyone, others only themselves.
func canSeeUser(p auth.Principal, userID string) bool {
	return p.Can(rbac.PermReadAll) || (p.UserID != "" && p.UserID == userID && p.Can(rbac.PermReadOwn))
}

// GetUser returns a user the principal may see: admins and admin viewers
// any user, everyone else only themselves (403 otherwise).
func (s *Service) GetUser(ctx context.Context, p auth.Principal, userID string) (UserDetail, error) {
	if err := require(p, rbac.PermReadOwn); err != nil {
		return UserDetail{}, err
	}
	if !canSeeUser(p, userID) {
		return UserDetail{}, apperr.Forbidden("You may only view your own user.")
	}
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return UserDetail{}, notFound(err, "User %q not found.", userID)
	}
	ms, err := s.store.ListMembershipsByUser(ctx, userID)
	if err != nil {
		return UserDetail{}, fmt.Errorf("service: list memberships: %w", err)
	}
	return UserDetail{User: u, Memberships: ms}, nil
}

// UpdateUser changes a user (admin only). A role change, blocking, or a
// new password revokes the user's sessions and invalidates cached answers.
// It never creates a user: an unknown user is 404.
func (s *Service) UpdateUser(ctx context.Context, p auth.Principal, in UserUpdate) (UserDetail, error) {
	if err := require(p, rbac.PermUserWrite); err != nil {
		return UserDetail{}, err
	}
	if (in.UserID == nil || *in.UserID == "") && (in.UserEmail == nil || *in.UserEmail == "") {
		return UserDetail{}, apperr.InvalidParam("user_id", "user_id or user_email is required.")
	}
	if in.UserRole != nil {
		if _, err := validRole("user_role", *in.UserRole); err != nil {
			return UserDetail{}, err
		}
	}
	if in.UserAlias != nil {
		if err := validAlias("user_alias", *in.UserAlias); err != nil {
			return UserDetail{}, err
		}
	}
	if in.UserEmail != nil && *in.UserEmail != "" {
		if err := validEmail("user_email", *in.UserEmail); err != nil {
			return UserDetail{}, err
		}
	}
	if err := firstPublic(errors.Join(validBudget("max_budget", in.MaxBudget), validDuration("budget_duration", in.BudgetDuration),
		validModels("models", in.Models), validLimit("tpm_limit", in.TPMLimit), validLimit("rpm_limit", in.RPMLimit))); err != nil {
		return UserDetail{}, err
	}
	var hash string
	if in.Password != nil {
		h, err := s.hashNewPassword(ctx, *in.Password)
		if err != nil {
			return UserDetail{}, err
		}
		hash = h
	}
	now := s.Now()
	var out UserDetail
	err := s.tx(ctx, func(tx store.Store, ch *Changes) error {
		id, err := s.resolveUserID(ctx, tx, in.UserID, in.UserEmail)
		if err != nil {
			return err
		}
		var before store.User
		var sensitive bool
		u, err := tx.UpdateUser(ctx, id, func(u *User) error {
			before = *u
			if in.UserEmail != nil && in.UserID != nil && *in.UserID != "" {
				u.Email = *in.UserEmail
			}
			if in.UserAlias != nil {
				u.Alias = *in.UserAlias
			}
			if in.UserRole != nil && *in.UserRole != u.Role {
				u.Role = *in.UserRole
				sensitive = true
			}
			if in.MaxBudget != nil {
				u.MaxBudget = in.MaxBudget
			}
			if in.BudgetDuration != nil {
				u.BudgetDuration = *in.BudgetDuration
				if *in.BudgetDuration == "" {
					u.BudgetResetAt = nil
				} else {
					d, _ := ParseDuration(*in.BudgetDuration)
					reset := now.Add(d)
					u.BudgetResetAt = &reset
				}
			}
			if in.Models != nil {
				u.Models = in.Models
			}
			if in.TPMLimit != nil {
				u.TPMLimit = in.TPMLimit
			}
			if in.RPMLimit != nil {
				u.RPMLimit = in.RPMLimit
			}
			if in.Metadata != nil {
				u.Metadata = in.Metadata
			}
			if in.Disabled != nil && *in.Disabled != u.Disabled {
				u.Disabled = *in.Disabled
				sensitive = true
			}
			if hash != "" {
				u.PasswordHash = hash
				sensitive = true
			}
			u.UpdatedAt = now
			return nil
		})
		if err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("Another user already has this e-mail address.").Wrap(err)
			}
			return notFound(err, "User not found.")
		}
		// Every field of a user is an input of the access decision for
		// the user's keys and sessions (role, models, budget, status).
		ch.User(id)
		if sensitive {
			if _, err := tx.RevokeUserSessions(ctx, id, now); err != nil {
				return fmt.Errorf("service: revoke sessions: %w", err)
			}
		}
		ms, err := tx.ListMembershipsByUser(ctx, id)
		if err != nil {
			return fmt.Errorf("service: list memberships: %w", err)
		}
		out = UserDetail{User: u, Memberships: ms}
		action := "user.updated"
		if before.Role != u.Role {
			action = "user.role_changed"
		}
		return s.audit(ctx, tx, p, action, "user", id, userSummary(before), userSummary(u))
	})
	if err != nil {
		return UserDetail{}, err
	}
	return out, nil
}

// User is a local alias so updater closures read naturally.
type User = store.User

func (s *Service) resolveUserID(ctx context.Context, tx store.Store, id, email *string) (string, error) {
	if id != nil && *id != "" {
		return *id, nil
	}
	u, err := tx.GetUserByEmail(ctx, *email)
	if err != nil {
		return "", notFound(err, "No user with this e-mail address.")
	}
	return u.ID, nil
}

// DeleteUsers deletes the named users and everything they own (admin only).
// All-or-nothing: if any id is unknown nothing is deleted.
func (s *Service) DeleteUsers(ctx context.Context, p auth.Principal, ids []string) ([]string, error) {
	if err := require(p, rbac.PermUserWrite); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, apperr.InvalidParam("user_ids", "user_ids must list at least one user.")
	}
	if len(ids) > 1000 {
		return nil, apperr.InvalidParam("user_ids", "At most 1000 users can be deleted at once.")
	}
	for _, id := range ids {
		if err := validID("user_ids", id); err != nil {
			return nil, err
		}
	}
	err := s.tx(ctx, func(tx store.Store, ch *Changes) error {
		for _, id := range ids {
			u, err := tx.GetUser(ctx, id)
			if err != nil {
				return notFound(err, "User %q not found; nothing was deleted.", id)
			}
			keys, _, err := tx.ListKeys(ctx, store.KeyFilter{UserID: id, Page: store.Page{Limit: 1000}})
			if err != nil {
				return fmt.Errorf("service: list keys: %w", err)
			}
			for _, k := range keys {
				ch.Key(k.Hash)
			}
			ch.User(id)
			if err := tx.DeleteUser(ctx, id); err != nil {
				return notFound(err, "User %q not found; nothing was deleted.", id)
			}
			if err := s.audit(ctx, tx, p, "user.deleted", "user", id, userSummary(u), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// UserListInput filters ListUsers.
type UserListInput struct {
	Role          string
	UserIDs       []string
	EmailContains string
	TeamID        string
	// SSOUserIDs keeps users whose SSO subject is one of these (LiteLLM's
	// sso_user_ids).
	SSOUserIDs []string
	Page       int
	PageSize   int
	// Order: store.OrderCreated, OrderEmail or OrderRole ("" = oldest
	// first); anything else is 400.
	Order store.Order
}

// UserListItem is a user in a listing, with their key count.
type UserListItem struct {
	UserDetail
	KeyCount int64
}

// ListUsers lists users (admins and admin viewers).
func (s *Service) ListUsers(ctx context.Context, p auth.Principal, in UserListInput) ([]UserListItem, int64, error) {
	if err := require(p, rbac.PermReadAll); err != nil {
		return nil, 0, err
	}
	if in.Role != "" {
		if _, err := validRole("role", in.Role); err != nil {
			return nil, 0, err
		}
	}
	page, err := pageOf(in.Page, in.PageSize, 25)
	if err != nil {
		return nil, 0, err
	}
	if err := validOrder(in.Order, store.OrderCreated, store.OrderEmail, store.OrderRole); err != nil {
		return nil, 0, err
	}
	users, total, err := s.store.ListUsers(ctx, store.UserFilter{Role: in.Role, UserIDs: in.UserIDs, SSOSubjects: in.SSOUserIDs,
		EmailContains: strings.ToLower(in.EmailContains), TeamID: in.TeamID, Page: page, Order: in.Order})
	if err != nil {
		return nil, 0, fmt.Errorf("service: list users: %w", err)
	}
	out := make([]UserListItem, 0, len(users))
	for _, u := range users {
		ms, err := s.store.ListMembershipsByUser(ctx, u.ID)
		if err != nil {
			return nil, 0, fmt.Errorf("service: list memberships: %w", err)
		}
		_, n, err := s.store.ListKeys(ctx, store.KeyFilter{UserID: u.ID, Page: store.Page{Limit: 1}})
		if err != nil {
			return nil, 0, fmt.Errorf("service: count keys: %w", err)
		}
		out = append(out, UserListItem{UserDetail: UserDetail{User: u, Memberships: ms}, KeyCount: n})
	}
	return out, total, nil
}

// validOrder accepts an empty order or one by the listed columns: a sort
// value is never passed on unchecked.
func validOrder(o store.Order, allowed ...string) error {
	if o.By == "" || slices.Contains(allowed, o.By) {
		return nil
	}
	return apperr.InvalidParam("sort", "sort must be one of: %s.", strings.Join(allowed, ", "))
}

// UserStatus is how far a user got: "blocked", "invited" (has never set a
// password nor signed in by SSO, so an invitation link is how they start)
// or "active".
func UserStatus(u store.User) string {
	switch {
	case u.Disabled:
		return "blocked"
	case u.PasswordHash == "" && u.SSOSubject == "":
		return "invited"
	}
	return "active"
}

// pageOf turns 1-based page/page_size into a store.Page, enforcing
// page_size ≤ 100.
func pageOf(page, size, def int) (store.Page, error) {
	if page == 0 {
		page = 1
	}
	if size == 0 {
		size = def
	}
	if page < 1 {
		return store.Page{}, apperr.InvalidParam("page", "page must be 1 or more.")
	}
	if size < 1 || size > 100 {
		return store.Page{}, apperr.InvalidParam("page_size", "page_size must be between 1 and 100.")
	}
	if page > 1_000_000 {
		return store.Page{}, apperr.InvalidParam("page", "page is too large.")
	}
	return store.Page{Offset: (page - 1) * size, Limit: size}, nil
}

// GetUserByEmail finds a user by e-mail (case-insensitive) for admins.
func (s *Service) GetUserByEmail(ctx context.Context, p auth.Principal, email string) (store.User, error) {
	if err := require(p, rbac.PermReadAll); err != nil {
		return store.User{}, err
	}
	u, err := s.store.GetUserByEmail(ctx, email)
	if err != nil {
		return store.User{}, notFound(err, "No user with e-mail %q.", truncate(email, 80))
	}
	return u, nil
}
