package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// SCIM tokens are ownerless API keys of type "scim": a proxy admin makes
// one per identity provider, hands it to the IdP once, and rotates or
// revokes it here. They are ordinary keys underneath, so the key
// operations' checks, audit events and cache invalidation apply.

// scimTokenAliasPrefix marks a SCIM token's alias, so tokens made here are
// recognisable in /key/list too.
const scimTokenAliasPrefix = "scim-"

// SCIMOverview is what the SCIM admin page shows.
type SCIMOverview struct {
	Tokens []store.Key
	// LastRequest is the newest last-use time of any token (batched, so up
	// to a flush interval late); nil when no token was ever used.
	LastRequest *time.Time
	// LastChange is the time of the newest SCIM change; nil when none.
	LastChange *time.Time
	// Changes are the newest SCIM changes, newest first.
	Changes []store.AuditEvent
}

func requireSCIMAdmin(p auth.Principal) error {
	if err := require(p, rbac.PermUserWrite); err != nil {
		return err
	}
	return require(p, rbac.PermKeyWriteAny)
}

// SCIMStatus lists the SCIM tokens and the latest n SCIM changes (admins
// and admin viewers).
func (s *Service) SCIMStatus(ctx context.Context, p auth.Principal, n int) (SCIMOverview, error) {
	if err := require(p, rbac.PermReadAll); err != nil {
		return SCIMOverview{}, err
	}
	var o SCIMOverview
	keys, _, err := s.store.ListKeys(ctx, store.KeyFilter{KeyType: rbac.KeyTypeSCIM, Page: store.Page{Limit: 100}})
	if err != nil {
		return SCIMOverview{}, fmt.Errorf("service: list scim tokens: %w", err)
	}
	o.Tokens = keys
	for _, k := range keys {
		if k.LastActive != nil && (o.LastRequest == nil || k.LastActive.After(*o.LastRequest)) {
			t := *k.LastActive
			o.LastRequest = &t
		}
	}
	f := store.AuditFilter{ActionPrefix: SCIMActionPrefix, Page: store.Page{Limit: 1}}
	_, total, err := s.store.ListAudit(ctx, f)
	if err != nil {
		return SCIMOverview{}, fmt.Errorf("service: count scim changes: %w", err)
	}
	if total == 0 || n <= 0 {
		return o, nil
	}
	f.Page = store.Page{Offset: int(max(total-int64(n), 0)), Limit: n}
	rows, _, err := s.store.ListAudit(ctx, f)
	if err != nil {
		return SCIMOverview{}, fmt.Errorf("service: list scim changes: %w", err)
	}
	for i := len(rows) - 1; i >= 0; i-- {
		o.Changes = append(o.Changes, rows[i])
	}
	if len(o.Changes) > 0 {
		t := o.Changes[0].At
		o.LastChange = &t
	}
	return o, nil
}

// CreateSCIMToken makes a SCIM token named name (e.g. "okta"); the raw
// value is returned once.
func (s *Service) CreateSCIMToken(ctx context.Context, p auth.Principal, name string) (IssuedKey, error) {
	if err := requireSCIMAdmin(p); err != nil {
		return IssuedKey{}, err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = "idp"
	}
	if err := validID("name", name); err != nil || len(name) > 64 {
		return IssuedKey{}, apperr.InvalidParam("name", "The token name must be 1 to 64 characters without spaces (e.g. okta, entra).")
	}
	alias, typ := scimTokenAliasPrefix+name, rbac.KeyTypeSCIM
	return s.GenerateKey(ctx, p, KeyRequest{KeyAlias: &alias, KeyType: &typ})
}

func (s *Service) loadSCIMToken(ctx context.Context, ref string) (store.Key, error) {
	k, err := s.loadKey(ctx, s.store, ref)
	if err != nil {
		return store.Key{}, err
	}
	if k.KeyType != rbac.KeyTypeSCIM {
		return store.Key{}, apperr.NotFound("SCIM token not found.")
	}
	return k, nil
}

// RotateSCIMToken replaces a SCIM token's secret: the old value stops
// working at once on every replica; the new one is returned once.
func (s *Service) RotateSCIMToken(ctx context.Context, p auth.Principal, ref string) (IssuedKey, error) {
	if err := requireSCIMAdmin(p); err != nil {
		return IssuedKey{}, err
	}
	k, err := s.loadSCIMToken(ctx, ref)
	if err != nil {
		return IssuedKey{}, err
	}
	return s.RegenerateKey(ctx, p, k.Hash, KeyRequest{})
}

// RevokeSCIMToken deletes a SCIM token.
func (s *Service) RevokeSCIMToken(ctx context.Context, p auth.Principal, ref string) error {
	if err := requireSCIMAdmin(p); err != nil {
		return err
	}
	k, err := s.loadSCIMToken(ctx, ref)
	if err != nil {
		return err
	}
	return s.DeleteKeys(ctx, p, []string{k.Hash}, nil)
}

// linkDirectoryUser links a first SSO login to the account SCIM
// provisioned for the same person, by the rules SSO already uses: the
// IdP-verified e-mail equals the account's e-mail, or the subject equals
// the account's externalId (Okta sends its user id as both) with no
// verified e-mail saying otherwise. Never an account the directory did
// not provision, one already linked, or a proxy_admin (which SSO never
// links automatically).
func (s *Service) linkDirectoryUser(ctx context.Context, tx store.Store, id sso.Identity) (store.User, bool, error) {
	linkable := func(u store.User) bool {
		return scimOwns(u) && u.SSOSubject == "" && u.Role != string(rbac.RoleProxyAdmin)
	}
	email := strings.TrimSpace(id.Email)
	var cand store.User
	found := false
	if email != "" && id.EmailVerified {
		u, err := tx.GetUserByEmail(ctx, email)
		switch {
		case err == nil:
			cand, found = u, linkable(u)
		case !errors.Is(err, store.ErrNotFound):
			return store.User{}, false, fmt.Errorf("service: sso email lookup: %w", err)
		}
	}
	if !found {
		users, total, err := tx.ListUsers(ctx, store.UserFilter{Page: store.Page{Limit: 2},
			Where: &store.Cond{Op: store.CondEq, Field: store.UserFieldExternalID, Value: id.Subject}})
		if err != nil {
			return store.User{}, false, fmt.Errorf("service: sso external id lookup: %w", err)
		}
		if total == 1 && linkable(users[0]) && (!id.EmailVerified || email == "" || strings.EqualFold(email, users[0].Email)) {
			cand, found = users[0], true
		}
	}
	if !found {
		return store.User{}, false, nil
	}
	u, err := tx.UpdateUser(ctx, cand.ID, func(x *store.User) error {
		x.SSOIssuer, x.SSOSubject, x.UpdatedAt = id.Issuer, id.Subject, s.Now()
		return nil
	})
	if err != nil {
		return store.User{}, false, fmt.Errorf("service: link sso: %w", err)
	}
	return u, true, nil
}
