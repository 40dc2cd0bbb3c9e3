package service

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// This file holds SCIM provisioning in Keygate's terms: an identity
// provider creates, changes, deactivates and deletes users, and keeps
// groups (teams it manages) and their members. The SCIM wire format
// (schemas, PATCH paths, filters) lives in api/scim; every rule lives here,
// so audit, permission checks and cache invalidation happen as for every
// other change.

// DirectoryPolicy configures SCIM provisioning.
type DirectoryPolicy struct {
	// RoleMapping is the SSO role mapping (sso.role_mapping). Its Map is
	// looked up with the display names and externalIds of the directory
	// groups a user belongs to; the most privileged mapped role wins, and
	// a user in no mapped group gets DefaultDirectoryRole. With an empty
	// Map SCIM never changes roles.
	RoleMapping sso.RoleMapping
}

// ErrDirectoryImmutable marks a change SCIM may not make (the e-mail of
// an account it adopted rather than created); the SCIM face answers it as
// scimType "mutability".
var ErrDirectoryImmutable = errors.New("service: attribute not changeable through the directory")

// scimOwns reports whether SCIM created u (rather than adopting an
// existing account).
func scimOwns(u store.User) bool { return u.Directory != nil && u.Directory.Provisioned }

// adoptable refuses SCIM changes to a proxy_admin that SCIM did not
// create: as SSO never links such an account automatically, the identity
// provider may not deactivate, delete or rename it either.
func adoptable(u store.User) error {
	if u.Role == string(rbac.RoleProxyAdmin) && !scimOwns(u) {
		return apperr.Forbidden("User %q is a proxy_admin that SCIM did not provision; manage it in Keygate.", truncate(u.ID, 80))
	}
	return nil
}

// DefaultDirectoryRole is the role of a provisioned user whom no group
// maps to a role: the least privileged one.
const DefaultDirectoryRole = rbac.RoleInternalUserViewer

// Audit actions of SCIM changes. Every one starts with "scim." so the SCIM
// page can list them; the actor is the token (or master key) that made it.
const (
	actionSCIMUserCreated     = "scim.user.created"
	actionSCIMUserUpdated     = "scim.user.updated"
	actionSCIMUserDeactivated = "scim.user.deactivated"
	actionSCIMUserReactivated = "scim.user.reactivated"
	actionSCIMUserDeleted     = "scim.user.deleted"
	actionSCIMUserRole        = "scim.user.role_changed"
	actionSCIMGroupCreated    = "scim.group.created"
	actionSCIMGroupUpdated    = "scim.group.updated"
	actionSCIMGroupDeleted    = "scim.group.deleted"
	actionSCIMMemberAdded     = "scim.group.member_added"
	actionSCIMMemberRemoved   = "scim.group.member_removed"
	// SCIMActionPrefix selects the SCIM changes in the audit log.
	SCIMActionPrefix = "scim."
)

// Limits on what one provisioning request may carry.
const (
	maxDirectoryEmails  = 20
	maxDirectoryMembers = 10000
	maxDirectoryText    = 255
	// MaxDirectoryPage is the most resources one list answer holds.
	MaxDirectoryPage = 200
)

// DirectoryUser is a user as an identity provider provisions it: SCIM's
// User resource in Keygate's terms. UserName is the e-mail login name.
type DirectoryUser struct {
	ID             string // Keygate's user id; ignored on create
	UserName       string
	ExternalID     string
	DisplayName    string
	GivenName      string
	FamilyName     string
	Emails         []store.DirectoryEmail
	Active         bool
	EmployeeNumber string
	Department     string

	// Read-only: set on answers, ignored on input.
	Groups    []DirectoryRef
	Role      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DirectoryRef names a group of a user or a member of a group.
type DirectoryRef struct {
	ID      string
	Display string
}

// DirectoryGroup is a team the identity provider manages: SCIM's Group
// resource. Members are user ids (Display is their e-mail on answers).
type DirectoryGroup struct {
	ID          string
	DisplayName string
	ExternalID  string
	Members     []DirectoryRef

	// MembersOmitted: the answer was asked without members.
	MembersOmitted bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// ---- users ----

func validText(param, v string) error {
	if len(v) > maxDirectoryText {
		return apperr.InvalidParam(param, "%s is longer than %d characters.", param, maxDirectoryText)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return apperr.InvalidParam(param, "%s must not contain control characters.", param)
		}
	}
	return nil
}

func (in *DirectoryUser) validate() error {
	in.UserName = strings.TrimSpace(in.UserName)
	if in.UserName == "" {
		return apperr.InvalidParam("userName", "userName is required.")
	}
	if err := validEmail("userName", in.UserName); err != nil {
		return apperr.InvalidParam("userName", "userName must be the user's e-mail address (Keygate's login name); map the IdP's e-mail or UPN to userName.")
	}
	for param, v := range map[string]string{"externalId": in.ExternalID, "displayName": in.DisplayName, "name.givenName": in.GivenName,
		"name.familyName": in.FamilyName, "employeeNumber": in.EmployeeNumber, "department": in.Department} {
		if err := validText(param, v); err != nil {
			return err
		}
	}
	if len(in.Emails) > maxDirectoryEmails {
		return apperr.InvalidParam("emails", "At most %d e-mail addresses are kept per user.", maxDirectoryEmails)
	}
	for _, e := range in.Emails {
		if err := validEmail("emails", e.Value); err != nil {
			return apperr.InvalidParam("emails", "emails: %q is not an e-mail address.", truncate(e.Value, 80))
		}
		if err := validText("emails.type", e.Type); err != nil {
			return err
		}
	}
	return nil
}

// applyTo writes the directory's view onto a stored user: the e-mail login
// name, the display name (or the full name when none is given), the
// profile and the status. Role, budgets, models and password are not the
// directory's to change.
func (in DirectoryUser) applyTo(u *store.User) {
	provisioned := scimOwns(*u)
	u.Email = in.UserName
	u.ExternalID = in.ExternalID
	u.Alias = in.DisplayName
	if u.Alias == "" {
		u.Alias = strings.TrimSpace(in.GivenName + " " + in.FamilyName)
	}
	u.Directory = &store.DirectoryProfile{Provisioned: provisioned, GivenName: in.GivenName, FamilyName: in.FamilyName,
		Emails: append([]store.DirectoryEmail(nil), in.Emails...), EmployeeNumber: in.EmployeeNumber, Department: in.Department}
	u.Disabled = !in.Active
}

// directoryUserOf is the directory's view of a stored user. A user the
// directory never provisioned (found by a userName filter and adopted)
// shows its e-mail as its one work address.
func directoryUserOf(u store.User, groups []store.Team) DirectoryUser {
	d := DirectoryUser{ID: u.ID, UserName: u.Email, ExternalID: u.ExternalID, DisplayName: u.Alias, Active: !u.Disabled,
		Role: u.Role, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	if p := u.Directory; p != nil {
		d.GivenName, d.FamilyName, d.EmployeeNumber, d.Department = p.GivenName, p.FamilyName, p.EmployeeNumber, p.Department
		d.Emails = append([]store.DirectoryEmail(nil), p.Emails...)
	} else if u.Email != "" {
		d.Emails = []store.DirectoryEmail{{Value: u.Email, Type: "work", Primary: true}}
	}
	for _, t := range groups {
		d.Groups = append(d.Groups, DirectoryRef{ID: t.ID, Display: t.Alias})
	}
	return d
}

// directorySummary is the audit view of a provisioned user.
func directorySummary(u store.User) map[string]any {
	m := map[string]any{"user_id": u.ID, "user_email": u.Email, "user_alias": u.Alias, "external_id": u.ExternalID,
		"user_role": u.Role, "disabled": u.Disabled}
	if p := u.Directory; p != nil {
		m["given_name"], m["family_name"], m["employee_number"], m["department"] = p.GivenName, p.FamilyName, p.EmployeeNumber, p.Department
	}
	return m
}

// scimActor adds the presenting key to an audit summary, so a change
// names the token that made it even when its actor id is the master key's.
func scimActor(p auth.Principal, m map[string]any) map[string]any {
	if m == nil {
		m = map[string]any{}
	}
	switch {
	case p.Method == auth.MethodMasterKey:
		m["via"] = "scim (master key)"
	case p.KeyHash != "":
		m["via"] = "scim"
		m["scim_key"] = p.KeyHash
		if p.KeyAlias != "" {
			m["scim_key_alias"] = p.KeyAlias
		}
	}
	return m
}

var managedOnly = &store.Cond{Op: store.CondEq, Field: store.TeamFieldDirectoryManaged, Value: true}

func (s *Service) directoryGroupsOf(ctx context.Context, st store.Store, userID string) ([]store.Team, error) {
	teams, _, err := st.ListTeams(ctx, store.TeamFilter{UserID: userID, Where: managedOnly, Page: store.Page{Limit: 1000}})
	if err != nil {
		return nil, fmt.Errorf("service: list directory groups: %w", err)
	}
	return teams, nil
}

func directoryPage(offset, limit int) store.Page {
	if limit <= 0 || limit > MaxDirectoryPage {
		limit = MaxDirectoryPage
	}
	return store.Page{Offset: max(offset, 0), Limit: limit}
}

// ListDirectoryUsers lists users matching where (nil: all), for SCIM.
// withGroups adds each user's directory groups (one query per user, so
// callers skip it when the client excluded the attribute).
func (s *Service) ListDirectoryUsers(ctx context.Context, p auth.Principal, where *store.Cond, offset, limit int, withGroups bool) ([]DirectoryUser, int64, error) {
	if err := require(p, rbac.PermSCIM); err != nil {
		return nil, 0, err
	}
	users, total, err := s.store.ListUsers(ctx, store.UserFilter{Where: where, Page: directoryPage(offset, limit)})
	if err != nil {
		return nil, 0, fmt.Errorf("service: list directory users: %w", err)
	}
	out := make([]DirectoryUser, 0, len(users))
	for _, u := range users {
		var groups []store.Team
		if withGroups {
			if groups, err = s.directoryGroupsOf(ctx, s.store, u.ID); err != nil {
				return nil, 0, err
			}
		}
		out = append(out, directoryUserOf(u, groups))
	}
	return out, total, nil
}

// GetDirectoryUser returns one user for SCIM.
func (s *Service) GetDirectoryUser(ctx context.Context, p auth.Principal, id string) (DirectoryUser, error) {
	if err := require(p, rbac.PermSCIM); err != nil {
		return DirectoryUser{}, err
	}
	return s.loadDirectoryUser(ctx, s.store, id)
}

func (s *Service) loadDirectoryUser(ctx context.Context, st store.Store, id string) (DirectoryUser, error) {
	u, err := st.GetUser(ctx, id)
	if err != nil {
		return DirectoryUser{}, notFound(err, "User %q not found.", truncate(id, 80))
	}
	groups, err := s.directoryGroupsOf(ctx, st, id)
	if err != nil {
		return DirectoryUser{}, err
	}
	return directoryUserOf(u, groups), nil
}

// CreateDirectoryUser provisions a user with the least privileged role
// (groups may raise it later). A userName that is already someone's
// e-mail, compared case-insensitively, is a 409.
func (s *Service) CreateDirectoryUser(ctx context.Context, p auth.Principal, in DirectoryUser) (DirectoryUser, error) {
	if err := require(p, rbac.PermSCIM); err != nil {
		return DirectoryUser{}, err
	}
	if err := in.validate(); err != nil {
		return DirectoryUser{}, err
	}
	now := s.Now()
	u := store.User{ID: s.newID(), Role: string(DefaultDirectoryRole), CreatedAt: now, UpdatedAt: now,
		Directory: &store.DirectoryProfile{Provisioned: true}}
	in.applyTo(&u)
	var out DirectoryUser
	err := s.store.Tx(ctx, func(tx store.Store) error {
		if err := tx.CreateUser(ctx, &u); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("A user with userName %q already exists.", truncate(in.UserName, 80)).Wrap(err)
			}
			return fmt.Errorf("service: create directory user: %w", err)
		}
		out = directoryUserOf(u, nil)
		return s.audit(ctx, tx, p, actionSCIMUserCreated, "user", u.ID, nil, scimActor(p, directorySummary(u)))
	})
	if err != nil {
		return DirectoryUser{}, err
	}
	return out, nil
}

// UpdateDirectoryUser changes a user by letting change edit the
// directory's view of it (SCIM PUT replaces it, PATCH edits it) inside one
// transaction. active false blocks the user at once: sessions are revoked
// and every cached answer for their keys and sessions is dropped on every
// replica; keys, spend and team memberships stay, so active true restores
// access to the keys that were not deleted.
func (s *Service) UpdateDirectoryUser(ctx context.Context, p auth.Principal, id string, change func(*DirectoryUser) error) (DirectoryUser, error) {
	if err := require(p, rbac.PermSCIM); err != nil {
		return DirectoryUser{}, err
	}
	now := s.Now()
	var out DirectoryUser
	var revoked []string
	err := s.txAnnouncing(ctx, func(tx store.Store) error {
		cur, err := s.loadDirectoryUser(ctx, tx, id)
		if err != nil {
			return err
		}
		next := cur
		next.Emails = append([]store.DirectoryEmail(nil), cur.Emails...)
		if err := change(&next); err != nil {
			return err
		}
		if err := next.validate(); err != nil {
			return err
		}
		var before store.User
		u, err := tx.UpdateUser(ctx, id, func(u *store.User) error {
			before = *u
			if err := adoptable(*u); err != nil {
				return err
			}
			if !scimOwns(*u) && !strings.EqualFold(next.UserName, u.Email) {
				return apperr.InvalidParam("userName", "userName identifies an account SCIM did not create; it cannot be changed through SCIM.").
					Wrap(ErrDirectoryImmutable)
			}
			next.applyTo(u)
			u.UpdatedAt = now
			return nil
		})
		if err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("Another user already has userName %q.", truncate(next.UserName, 80)).Wrap(err)
			}
			return notFound(err, "User %q not found.", truncate(id, 80))
		}
		action := actionSCIMUserUpdated
		switch {
		case !before.Disabled && u.Disabled:
			action = actionSCIMUserDeactivated
			if revoked, err = tx.RevokeUserSessions(ctx, id, now); err != nil {
				return fmt.Errorf("service: revoke sessions: %w", err)
			}
		case before.Disabled && !u.Disabled:
			action = actionSCIMUserReactivated
		}
		if err := s.audit(ctx, tx, p, action, "user", id, directorySummary(before), scimActor(p, directorySummary(u))); err != nil {
			return err
		}
		out = directoryUserOf(u, nil)
		out.Groups = cur.Groups
		return nil
	}, func() Changes {
		// The e-mail and status are part of every cached answer for the user.
		return Changes{Sessions: revoked, Users: []string{id}}
	})
	if err != nil {
		return DirectoryUser{}, err
	}
	return out, nil
}

// DeleteDirectoryUser removes a user for good, as DELETE /Users/{id}
// asks: the user, their keys, memberships, invitations and sessions go in
// one transaction (as /user/delete does); spend log rows and the audit
// log keep the user id and key hashes, so spend history stays reportable.
// Identity providers usually deactivate first (active false), which keeps
// everything.
func (s *Service) DeleteDirectoryUser(ctx context.Context, p auth.Principal, id string) error {
	if err := require(p, rbac.PermSCIM); err != nil {
		return err
	}
	var hashes []string
	err := s.txAnnouncing(ctx, func(tx store.Store) error {
		hashes = nil // fn may be retried
		u, err := tx.GetUser(ctx, id)
		if err != nil {
			return notFound(err, "User %q not found.", truncate(id, 80))
		}
		if err := adoptable(u); err != nil {
			return err
		}
		keys, _, err := tx.ListKeys(ctx, store.KeyFilter{UserID: id, Page: store.Page{Limit: 1000}})
		if err != nil {
			return fmt.Errorf("service: list keys: %w", err)
		}
		for _, k := range keys {
			hashes = append(hashes, k.Hash)
		}
		ms, err := tx.ListMembershipsByUser(ctx, id)
		if err != nil {
			return fmt.Errorf("service: list memberships: %w", err)
		}
		before := directorySummary(u)
		teams := make([]string, 0, len(ms))
		for _, m := range ms {
			teams = append(teams, m.TeamID)
		}
		before["teams"], before["keys_deleted"] = teams, len(hashes)
		if err := tx.DeleteUser(ctx, id); err != nil {
			return notFound(err, "User %q not found.", truncate(id, 80))
		}
		return s.audit(ctx, tx, p, actionSCIMUserDeleted, "user", id, before, scimActor(p, nil))
	}, func() Changes { return Changes{Keys: hashes, Users: []string{id}} })
	return err
}

// ---- groups ----

func (in *DirectoryGroup) validate() error {
	in.DisplayName = strings.TrimSpace(in.DisplayName)
	if in.DisplayName == "" {
		return apperr.InvalidParam("displayName", "displayName is required.")
	}
	if err := validText("displayName", in.DisplayName); err != nil {
		return err
	}
	if err := validText("externalId", in.ExternalID); err != nil {
		return err
	}
	if len(in.Members) > maxDirectoryMembers {
		return apperr.InvalidParam("members", "A group may have at most %d members.", maxDirectoryMembers)
	}
	for _, m := range in.Members {
		if err := validID("members", m.ID); err != nil {
			return apperr.InvalidParam("members", "Every member needs the SCIM id of a user as its value.")
		}
	}
	return nil
}

// sortedKeys makes audit order (and so the audit log) deterministic.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func memberSet(ms []DirectoryRef) map[string]bool {
	set := make(map[string]bool, len(ms))
	for _, m := range ms {
		set[m.ID] = true
	}
	return set
}

func groupSummary(t store.Team) map[string]any {
	return map[string]any{"team_id": t.ID, "team_alias": t.Alias, "external_id": t.ExternalID}
}

// ListDirectoryGroups lists the teams the directory manages.
func (s *Service) ListDirectoryGroups(ctx context.Context, p auth.Principal, where *store.Cond, offset, limit int, withMembers bool) ([]DirectoryGroup, int64, error) {
	if err := require(p, rbac.PermSCIM); err != nil {
		return nil, 0, err
	}
	teams, total, err := s.store.ListTeams(ctx, store.TeamFilter{Where: store.And(managedOnly, where), Page: directoryPage(offset, limit)})
	if err != nil {
		return nil, 0, fmt.Errorf("service: list directory groups: %w", err)
	}
	out := make([]DirectoryGroup, 0, len(teams))
	for _, t := range teams {
		g, err := s.directoryGroupOf(ctx, s.store, t, withMembers)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, g)
	}
	return out, total, nil
}

func (s *Service) directoryGroupOf(ctx context.Context, st store.Store, t store.Team, withMembers bool) (DirectoryGroup, error) {
	g := DirectoryGroup{ID: t.ID, DisplayName: t.Alias, ExternalID: t.ExternalID, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
		MembersOmitted: !withMembers}
	if !withMembers {
		return g, nil
	}
	ms, err := st.ListMembershipsByTeam(ctx, t.ID)
	if err != nil {
		return DirectoryGroup{}, fmt.Errorf("service: list members: %w", err)
	}
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		ids = append(ids, m.UserID)
	}
	emails := map[string]string{}
	for start := 0; start < len(ids); start += 1000 {
		users, _, err := st.ListUsers(ctx, store.UserFilter{UserIDs: ids[start:min(start+1000, len(ids))], Page: store.Page{Limit: 1000}})
		if err != nil {
			return DirectoryGroup{}, fmt.Errorf("service: list members: %w", err)
		}
		for _, u := range users {
			emails[u.ID] = u.Email
		}
	}
	for _, id := range ids {
		g.Members = append(g.Members, DirectoryRef{ID: id, Display: emails[id]})
	}
	return g, nil
}

func (s *Service) loadDirectoryTeam(ctx context.Context, st store.Store, id string) (store.Team, error) {
	t, err := st.GetTeam(ctx, id)
	if err != nil {
		return store.Team{}, notFound(err, "Group %q not found.", truncate(id, 80))
	}
	if !t.DirectoryManaged {
		// Teams made by hand are not the directory's to see or change.
		return store.Team{}, apperr.NotFound("Group %q not found.", truncate(id, 80))
	}
	return t, nil
}

// GetDirectoryGroup returns one directory-managed team.
func (s *Service) GetDirectoryGroup(ctx context.Context, p auth.Principal, id string, withMembers bool) (DirectoryGroup, error) {
	if err := require(p, rbac.PermSCIM); err != nil {
		return DirectoryGroup{}, err
	}
	t, err := s.loadDirectoryTeam(ctx, s.store, id)
	if err != nil {
		return DirectoryGroup{}, err
	}
	return s.directoryGroupOf(ctx, s.store, t, withMembers)
}

// nameTaken reports whether another team already has this display name,
// compared case-insensitively (SCIM clients find groups by name).
func nameTaken(ctx context.Context, st store.Store, name, except string) error {
	where := &store.Cond{Op: store.CondEq, Field: store.TeamFieldAlias, Value: name}
	teams, _, err := st.ListTeams(ctx, store.TeamFilter{Where: where, Page: store.Page{Limit: 2}})
	if err != nil {
		return fmt.Errorf("service: check group name: %w", err)
	}
	for _, t := range teams {
		if t.ID != except {
			if !t.DirectoryManaged {
				return apperr.Conflict("A team named %q already exists and is not managed by SCIM; rename or delete it in Keygate first.", truncate(name, 80))
			}
			return apperr.Conflict("A group named %q already exists.", truncate(name, 80))
		}
	}
	return nil
}

// CreateDirectoryGroup creates a directory-managed team with its members
// (team role "user"); members' roles are then derived from their groups.
func (s *Service) CreateDirectoryGroup(ctx context.Context, p auth.Principal, in DirectoryGroup) (DirectoryGroup, error) {
	if err := require(p, rbac.PermSCIM); err != nil {
		return DirectoryGroup{}, err
	}
	if err := in.validate(); err != nil {
		return DirectoryGroup{}, err
	}
	now := s.Now()
	t := store.Team{ID: s.newID(), Alias: in.DisplayName, ExternalID: in.ExternalID, DirectoryManaged: true, CreatedAt: now, UpdatedAt: now}
	var out DirectoryGroup
	var changed, revoked []string
	err := s.txAnnouncing(ctx, func(tx store.Store) error {
		if err := nameTaken(ctx, tx, in.DisplayName, ""); err != nil {
			return err
		}
		if err := tx.CreateTeam(ctx, &t); err != nil {
			return fmt.Errorf("service: create directory group: %w", err)
		}
		if err := s.audit(ctx, tx, p, actionSCIMGroupCreated, "team", t.ID, nil, scimActor(p, groupSummary(t))); err != nil {
			return err
		}
		var err error
		if changed, err = s.applyMembers(ctx, tx, p, t, nil, memberSet(in.Members)); err != nil {
			return err
		}
		if revoked, err = s.syncDirectoryRoles(ctx, tx, p, changed); err != nil {
			return err
		}
		out, err = s.directoryGroupOf(ctx, tx, t, true)
		return err
	}, func() Changes { return Changes{Sessions: revoked, Users: changed} })
	if err != nil {
		return DirectoryGroup{}, err
	}
	return out, nil
}

// applyMembers makes the team's members exactly want, given have, and
// returns the user ids whose membership changed. Every added user must
// exist; nothing is written otherwise (the caller's transaction rolls
// back).
func (s *Service) applyMembers(ctx context.Context, tx store.Store, p auth.Principal, t store.Team, have, want map[string]bool) ([]string, error) {
	var changed []string
	for _, id := range sortedKeys(want) {
		if have[id] {
			continue
		}
		if _, err := tx.GetUser(ctx, id); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, apperr.InvalidParam("members", "Member %q is not a user; provision the user first.", truncate(id, 80)).Wrap(err)
			}
			return nil, fmt.Errorf("service: check member: %w", err)
		}
		if err := tx.PutMembership(ctx, store.Membership{TeamID: t.ID, UserID: id, Role: string(rbac.TeamRoleUser), CreatedAt: s.Now()}); err != nil {
			return nil, fmt.Errorf("service: add member: %w", err)
		}
		if err := s.audit(ctx, tx, p, actionSCIMMemberAdded, "team", t.ID, nil, scimActor(p, map[string]any{"user_id": id})); err != nil {
			return nil, err
		}
		changed = append(changed, id)
	}
	for _, id := range sortedKeys(have) {
		if want[id] {
			continue
		}
		if err := tx.DeleteMembership(ctx, t.ID, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("service: remove member: %w", err)
		}
		if err := s.audit(ctx, tx, p, actionSCIMMemberRemoved, "team", t.ID, map[string]any{"user_id": id}, scimActor(p, nil)); err != nil {
			return nil, err
		}
		changed = append(changed, id)
	}
	return changed, nil
}

// UpdateDirectoryGroup changes a directory-managed team by letting change
// edit its directory view (SCIM PUT replaces it, PATCH edits name and
// members) in one transaction. Renaming re-derives every member's role,
// since mapped roles follow group names.
func (s *Service) UpdateDirectoryGroup(ctx context.Context, p auth.Principal, id string, change func(*DirectoryGroup) error) (DirectoryGroup, error) {
	if err := require(p, rbac.PermSCIM); err != nil {
		return DirectoryGroup{}, err
	}
	now := s.Now()
	var out DirectoryGroup
	var changed, revoked []string
	err := s.txAnnouncing(ctx, func(tx store.Store) error {
		t, err := s.loadDirectoryTeam(ctx, tx, id)
		if err != nil {
			return err
		}
		cur, err := s.directoryGroupOf(ctx, tx, t, true)
		if err != nil {
			return err
		}
		next := cur
		next.Members = append([]DirectoryRef(nil), cur.Members...)
		if err := change(&next); err != nil {
			return err
		}
		if err := next.validate(); err != nil {
			return err
		}
		renamed := next.DisplayName != t.Alias || next.ExternalID != t.ExternalID
		if !strings.EqualFold(next.DisplayName, t.Alias) {
			if err := nameTaken(ctx, tx, next.DisplayName, t.ID); err != nil {
				return err
			}
		}
		before := t
		if renamed {
			t, err = tx.UpdateTeam(ctx, id, func(x *store.Team) error {
				x.Alias, x.ExternalID, x.UpdatedAt = next.DisplayName, next.ExternalID, now
				return nil
			})
			if err != nil {
				return notFound(err, "Group %q not found.", truncate(id, 80))
			}
			if err := s.audit(ctx, tx, p, actionSCIMGroupUpdated, "team", id, groupSummary(before), scimActor(p, groupSummary(t))); err != nil {
				return err
			}
		}
		have := memberSet(cur.Members)
		if changed, err = s.applyMembers(ctx, tx, p, t, have, memberSet(next.Members)); err != nil {
			return err
		}
		if len(changed) > 0 && !renamed {
			// Membership is part of the group: its lastModified moves.
			if t, err = tx.UpdateTeam(ctx, id, func(x *store.Team) error { x.UpdatedAt = now; return nil }); err != nil {
				return notFound(err, "Group %q not found.", truncate(id, 80))
			}
		}
		recheck := changed
		if renamed {
			recheck = append(recheck, sortedKeys(have)...)
		}
		if revoked, err = s.syncDirectoryRoles(ctx, tx, p, recheck); err != nil {
			return err
		}
		changed = recheck
		out, err = s.directoryGroupOf(ctx, tx, t, true)
		return err
	}, func() Changes { return Changes{Sessions: revoked, Users: changed, Teams: []string{id}} })
	if err != nil {
		return DirectoryGroup{}, err
	}
	return out, nil
}

// DeleteDirectoryGroup deletes a directory-managed team as /team/delete
// does (memberships and the team's keys go with it) and re-derives its
// former members' roles.
func (s *Service) DeleteDirectoryGroup(ctx context.Context, p auth.Principal, id string) error {
	if err := require(p, rbac.PermSCIM); err != nil {
		return err
	}
	var hashes, members, revoked []string
	err := s.txAnnouncing(ctx, func(tx store.Store) error {
		hashes, members = nil, nil // fn may be retried
		t, err := s.loadDirectoryTeam(ctx, tx, id)
		if err != nil {
			return err
		}
		keys, _, err := tx.ListKeys(ctx, store.KeyFilter{TeamID: id, Page: store.Page{Limit: 1000}})
		if err != nil {
			return fmt.Errorf("service: list team keys: %w", err)
		}
		for _, k := range keys {
			hashes = append(hashes, k.Hash)
		}
		ms, err := tx.ListMembershipsByTeam(ctx, id)
		if err != nil {
			return fmt.Errorf("service: list members: %w", err)
		}
		for _, m := range ms {
			members = append(members, m.UserID)
		}
		if err := tx.DeleteTeam(ctx, id); err != nil {
			return notFound(err, "Group %q not found.", truncate(id, 80))
		}
		before := groupSummary(t)
		before["members"], before["keys_deleted"] = members, len(hashes)
		if err := s.audit(ctx, tx, p, actionSCIMGroupDeleted, "team", id, before, scimActor(p, nil)); err != nil {
			return err
		}
		revoked, err = s.syncDirectoryRoles(ctx, tx, p, members)
		return err
	}, func() Changes { return Changes{Keys: hashes, Sessions: revoked, Users: members, Teams: []string{id}} })
	return err
}

// syncDirectoryRoles re-derives the role of each user from the directory
// groups they are in, with the SSO role mapping's table and its "highest
// wins" rule; a changed role revokes the user's sessions (they carried the
// old role). Returns the revoked session ids. Without a mapping it does
// nothing: roles then stay what an admin set.
func (s *Service) syncDirectoryRoles(ctx context.Context, tx store.Store, p auth.Principal, userIDs []string) ([]string, error) {
	if len(s.directory.RoleMapping.Map) == 0 {
		return nil, nil
	}
	var revoked []string
	seen := map[string]bool{}
	for _, uid := range userIDs {
		if seen[uid] {
			continue
		}
		seen[uid] = true
		u, err := tx.GetUser(ctx, uid)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("service: load member: %w", err)
		}
		if u.Directory == nil || adoptable(u) != nil {
			continue // roles follow groups only for accounts the directory manages
		}
		groups, err := s.directoryGroupsOf(ctx, tx, uid)
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, 2*len(groups))
		for _, g := range groups {
			names = append(names, g.Alias)
			if g.ExternalID != "" {
				names = append(names, g.ExternalID)
			}
		}
		role, expl, err := sso.MapRole(sso.RoleMapping{Map: s.directory.RoleMapping.Map, DefaultRole: string(DefaultDirectoryRole)},
			sso.Identity{Groups: names})
		if err != nil {
			return nil, fmt.Errorf("service: map directory role: %w", err)
		}
		if string(role) == u.Role {
			continue
		}
		now := s.Now()
		if _, err := tx.UpdateUser(ctx, uid, func(x *store.User) error { x.Role, x.UpdatedAt = string(role), now; return nil }); err != nil {
			return nil, fmt.Errorf("service: set directory role: %w", err)
		}
		ids, err := tx.RevokeUserSessions(ctx, uid, now)
		if err != nil {
			return nil, fmt.Errorf("service: revoke sessions: %w", err)
		}
		revoked = append(revoked, ids...)
		if err := s.audit(ctx, tx, p, actionSCIMUserRole, "user", uid, map[string]any{"user_role": u.Role},
			scimActor(p, map[string]any{"user_role": string(role), "rule": strings.Replace(expl.Rule, "groups", "directory groups", 1)})); err != nil {
			return nil, err
		}
	}
	return revoked, nil
}
