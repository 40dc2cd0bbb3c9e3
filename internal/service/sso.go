package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// SSOPolicy decides who may sign in through an identity provider and with
// which role.
type SSOPolicy struct {
	// RoleMapping maps a claim to roles; re-evaluated at every login. With
	// no Claim and no Map, existing users keep their role and new users
	// get DefaultRole.
	RoleMapping sso.RoleMapping
	// AllowedEmailDomains restricts just-in-time provisioning (and every
	// SSO login) to verified e-mails of these domains; empty allows all.
	AllowedEmailDomains []string
	// ProxyAdminID is the IdP subject that is made proxy_admin.
	ProxyAdminID string
	// TeamsFromGroups adds the user to existing teams whose id is one of
	// their groups.
	TeamsFromGroups bool
}

func (p SSOPolicy) mapping() bool { return p.RoleMapping.Claim != "" || len(p.RoleMapping.Map) > 0 }

// explanationKey is where the role decision of the last SSO login is kept
// (user metadata), for GET /sso/explain.
const explanationKey = "sso_role_explanation"

var errSSOConflict = apperr.Forbidden("An account with this e-mail already exists and cannot be linked automatically; ask an administrator for an invitation.")

// SSOLogin links a verified identity to a user and signs them in. Users
// are found by (issuer, subject); a first login links to an existing
// account only through an unconsumed invitation for the verified e-mail,
// never by e-mail alone, never with an unverified e-mail and never to a
// proxy_admin; otherwise a new user is provisioned if the domain is
// allowed. The role is re-evaluated from the claims at every login, and a
// changed role revokes the user's older sessions. All of it and the new
// session are one transaction: a login that fails provisions, links and
// consumes nothing.
func (s *Service) SSOLogin(ctx context.Context, id sso.Identity, pol SSOPolicy) (LoginResult, error) {
	if err := s.sessionsEnabled(); err != nil {
		return LoginResult{}, err
	}
	if id.Issuer == "" || id.Subject == "" {
		return LoginResult{}, apperr.Unauthenticated("The identity provider returned no subject.")
	}
	if len(pol.AllowedEmailDomains) > 0 && (!id.EmailVerified || !sso.EmailDomainAllowed(id.Email, pol.AllowedEmailDomains)) {
		return LoginResult{}, apperr.Forbidden("Sign-in is limited to verified e-mail addresses of allowed domains.")
	}
	role, expl, err := s.ssoRole(id, pol)
	if err != nil {
		return LoginResult{}, err
	}
	now := s.Now()
	var u store.User
	var linked string
	var sess store.Session
	err = s.tx(ctx, func(tx store.Store, ch *Changes) error {
		existing, err := tx.GetUserBySSO(ctx, id.Issuer, id.Subject)
		switch {
		case err == nil:
			u = existing
		case errors.Is(err, store.ErrNotFound):
			u, linked, err = s.linkOrProvision(ctx, tx, id, role)
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("service: sso lookup: %w", err)
		}
		if u.Disabled {
			return apperr.Forbidden("This account is blocked.")
		}
		newRole := u.Role
		if pol.mapping() || id.Subject == pol.ProxyAdminID || linked == "provisioned" {
			newRole = string(role)
		}
		u, err = tx.UpdateUser(ctx, u.ID, func(x *store.User) error {
			x.Role = newRole
			if x.Metadata == nil {
				x.Metadata = map[string]any{}
			}
			x.Metadata[explanationKey] = map[string]any{"provider": id.Provider, "claim": expl.Claim, "matched_value": expl.MatchedValue,
				"rule": expl.Rule, "default": expl.Default, "role": string(role), "applied": newRole, "at": now}
			x.UpdatedAt = now
			return nil
		})
		if err != nil {
			return fmt.Errorf("service: sso update user: %w", err)
		}
		// The role, and with teams_from_groups the memberships, are
		// re-evaluated at every login: inputs of the access decision.
		ch.User(u.ID)
		if existing.ID != "" && existing.Role != newRole {
			revoked, err := tx.RevokeUserSessions(ctx, u.ID, now)
			if err != nil {
				return fmt.Errorf("service: revoke sessions: %w", err)
			}
			ch.Session(revoked...)
			if err := s.audit(ctx, tx, auth.Principal{UserID: u.ID, Role: rbac.Role(newRole)}, "user.role_changed", "user", u.ID,
				map[string]any{"user_role": existing.Role}, map[string]any{"user_role": newRole, "by": "sso role mapping"}); err != nil {
				return err
			}
		}
		if pol.TeamsFromGroups {
			if err := s.joinGroupTeams(ctx, tx, u.ID, id.Groups); err != nil {
				return err
			}
		}
		if linked != "" {
			if err := s.audit(ctx, tx, auth.Principal{UserID: u.ID, Role: rbac.Role(u.Role)}, "sso."+linked, "user", u.ID, nil,
				map[string]any{"issuer": id.Issuer, "provider": id.Provider, "user_role": u.Role}); err != nil {
				return err
			}
		}
		sess, err = s.openSession(ctx, tx, u, "sso", nil, id.IDToken, id.SID)
		return err
	})
	if err != nil {
		return LoginResult{}, err
	}
	return s.finishLogin(ctx, sess, u)
}

func (s *Service) ssoRole(id sso.Identity, pol SSOPolicy) (rbac.Role, sso.Explanation, error) {
	if pol.ProxyAdminID != "" && id.Subject == pol.ProxyAdminID {
		return rbac.RoleProxyAdmin, sso.Explanation{Rule: "subject matches PROXY_ADMIN_ID"}, nil
	}
	role, expl, err := sso.MapRole(pol.RoleMapping, id)
	if errors.Is(err, sso.ErrDenied) {
		return "", expl, apperr.Forbidden("Your identity provider groups do not grant access to this service.")
	}
	if err != nil {
		return "", expl, fmt.Errorf("service: role mapping: %w", err)
	}
	return role, expl, nil
}

// linkOrProvision handles a first SSO login: an invited account with the
// verified e-mail is linked (consuming the invitation); an existing
// account without invitation, an admin, or any account when the e-mail is
// unverified is refused; otherwise a new user is created.
func (s *Service) linkOrProvision(ctx context.Context, tx store.Store, id sso.Identity, role rbac.Role) (store.User, string, error) {
	now := s.Now()
	if u, ok, err := s.linkDirectoryUser(ctx, tx, id); err != nil || ok {
		return u, "linked", err
	}
	email := strings.TrimSpace(id.Email)
	if email != "" {
		u, err := tx.GetUserByEmail(ctx, email)
		switch {
		case err == nil:
			if !id.EmailVerified || u.SSOSubject != "" || u.Role == string(rbac.RoleProxyAdmin) {
				return store.User{}, "", errSSOConflict
			}
			inv, err := s.pendingInvitation(ctx, tx, u.ID)
			if err != nil {
				return store.User{}, "", err
			}
			if _, err := tx.ConsumeInvitation(ctx, inv.IDHash, now, u.ID); err != nil {
				return store.User{}, "", errSSOConflict
			}
			u, err = tx.UpdateUser(ctx, u.ID, func(x *store.User) error {
				x.SSOIssuer, x.SSOSubject, x.UpdatedAt = id.Issuer, id.Subject, now
				return nil
			})
			if err != nil {
				return store.User{}, "", fmt.Errorf("service: link sso: %w", err)
			}
			return u, "linked", nil
		case !errors.Is(err, store.ErrNotFound):
			return store.User{}, "", fmt.Errorf("service: sso email lookup: %w", err)
		}
	}
	nu := store.User{ID: s.newID(), Role: string(role), Alias: id.Name, SSOIssuer: id.Issuer, SSOSubject: id.Subject,
		CreatedAt: now, UpdatedAt: now}
	if id.EmailVerified {
		nu.Email = email
	}
	if err := tx.CreateUser(ctx, &nu); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.User{}, "", errSSOConflict
		}
		return store.User{}, "", fmt.Errorf("service: provision sso user: %w", err)
	}
	return nu, "provisioned", nil
}

func (s *Service) pendingInvitation(ctx context.Context, tx store.Store, userID string) (store.Invitation, error) {
	invs, _, err := tx.ListInvitations(ctx, store.InvitationFilter{UserID: userID, Page: store.Page{Limit: 100}})
	if err != nil {
		return store.Invitation{}, fmt.Errorf("service: list invitations: %w", err)
	}
	for _, inv := range invs {
		if !inv.IsAccepted && s.Now().Before(inv.ExpiresAt) {
			return inv, nil
		}
	}
	return store.Invitation{}, errSSOConflict
}

func (s *Service) joinGroupTeams(ctx context.Context, tx store.Store, userID string, groups []string) error {
	for _, g := range groups {
		if _, err := tx.GetTeam(ctx, g); err != nil {
			continue
		}
		if _, err := tx.GetMembership(ctx, g, userID); err == nil {
			continue
		}
		if err := tx.PutMembership(ctx, store.Membership{TeamID: g, UserID: userID, Role: string(rbac.TeamRoleUser), CreatedAt: s.Now()}); err != nil {
			return fmt.Errorf("service: join team from group: %w", err)
		}
	}
	return nil
}

// ExplainSSORole returns the role decision of the user's last SSO login.
func (s *Service) ExplainSSORole(ctx context.Context, p auth.Principal, userID string) (map[string]any, error) {
	if err := require(p, rbac.PermReadAll); err != nil {
		return nil, err
	}
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return nil, notFound(err, "User %q not found.", truncate(userID, 80))
	}
	out := map[string]any{"user_id": u.ID, "user_role": u.Role, "sso_linked": u.SSOSubject != ""}
	if e, ok := u.Metadata[explanationKey]; ok {
		out["last_sso_login"] = e
	} else {
		out["last_sso_login"] = nil
	}
	return out, nil
}

// BackchannelLogout revokes the sessions a verified logout token names: by
// IdP session id, else every session of the linked user.
func (s *Service) BackchannelLogout(ctx context.Context, c sso.LogoutClaims) (int, error) {
	now := s.Now()
	var ids []string
	err := s.txAnnouncing(ctx, func(tx store.Store) error {
		var err error
		if c.SID != "" {
			ids, err = tx.RevokeSessionsBySSOSID(ctx, c.SID, now)
		} else {
			u, lerr := tx.GetUserBySSO(ctx, c.Issuer, c.Subject)
			if errors.Is(lerr, store.ErrNotFound) {
				ids = nil
				return nil
			}
			if lerr != nil {
				return fmt.Errorf("service: backchannel lookup: %w", lerr)
			}
			ids, err = tx.RevokeUserSessions(ctx, u.ID, now)
		}
		if err != nil {
			return fmt.Errorf("service: backchannel revoke: %w", err)
		}
		for _, id := range ids {
			if err := s.audit(ctx, tx, auth.Principal{UserID: "idp:" + c.Issuer}, "logout.backchannel", "session", id, nil, nil); err != nil {
				return err
			}
		}
		return nil
	}, func() Changes { return Changes{Sessions: ids} })
	if err != nil {
		return 0, err
	}
	return len(ids), nil
}
