// Package rbac holds Keygate's roles, permissions and the table that joins
// them. It is pure data: no I/O, no imports of other Keygate packages.
package rbac

// Role is a user's global role, spelled as LiteLLM spells it.
type Role string

// The four global roles. The zero Role is "no role": an ownerless API key
// resolves to it and is granted nothing through this table.
const (
	RoleProxyAdmin         Role = "proxy_admin"
	RoleProxyAdminViewer   Role = "proxy_admin_viewer"
	RoleInternalUser       Role = "internal_user"
	RoleInternalUserViewer Role = "internal_user_viewer"
)

// TeamRole is a user's role inside one team.
type TeamRole string

// Team roles, as LiteLLM's members_with_roles uses them.
const (
	TeamRoleAdmin TeamRole = "admin"
	TeamRoleUser  TeamRole = "user"
)

// Permission names one thing a route or operation may require.
type Permission string

// Permissions. Route-level permissions decide whether a role may call a
// route at all; the service layer then narrows by ownership (own keys, own
// team) where the table below says "own".
const (
	// PermAuthenticated is held by every role: routes that any signed-in
	// principal may call, whose handler scopes the answer to the caller.
	PermAuthenticated Permission = "authenticated"
	// PermUserWrite: create, update, delete users and set their roles.
	PermUserWrite Permission = "user:write"
	// PermInvitationWrite: create, update and delete invitations.
	PermInvitationWrite Permission = "invitation:write"
	// PermTeamWrite: create, update and delete any team and its members.
	PermTeamWrite Permission = "team:write"
	// PermTeamMemberWrite: manage members of a team; for non-admins the
	// service additionally requires the caller to be that team's admin.
	PermTeamMemberWrite Permission = "team:member:write"
	// PermReadAll: view all users, teams, keys, invitations, spend and audit.
	PermReadAll Permission = "read:all"
	// PermKeyWriteOwn: create, update, regenerate and delete own keys.
	PermKeyWriteOwn Permission = "key:write:own"
	// PermKeyWriteAny: create, update, block and delete anybody's keys.
	PermKeyWriteAny Permission = "key:write:any"
	// PermReadOwn: view own keys, own spend, own profile.
	PermReadOwn Permission = "read:own"
	// PermPasswordChangeOwn: change one's own password.
	PermPasswordChangeOwn Permission = "password:change:own"
	// PermKeySelf: read the presenting API key's own record. Every
	// principal holds it, including an ownerless key (the zero Role).
	PermKeySelf Permission = "key:self"
	// PermSpendReport: report usage for any key (the proxy's job); held by
	// proxy_admin and granted to keys of type "service".
	PermSpendReport Permission = "spend:report"
	// PermSCIM: provision users and groups through /scim/v2. No role holds
	// it: only the master key and ownerless keys of type "scim" do (see
	// auth.Principal.Can), so a person's own credential never can.
	PermSCIM Permission = "scim"
)

// Grants returns the permissions of role: the role → permission matrix of
// DESIGN.md ("Roles"). It is a function rather than a package variable so the
// table cannot be mutated at run time.
func Grants(role Role) []Permission {
	switch role {
	case RoleProxyAdmin:
		return []Permission{PermAuthenticated, PermUserWrite, PermInvitationWrite, PermTeamWrite,
			PermTeamMemberWrite, PermReadAll, PermKeyWriteOwn, PermKeyWriteAny, PermReadOwn, PermPasswordChangeOwn,
			PermKeySelf, PermSpendReport}
	case RoleProxyAdminViewer:
		return []Permission{PermAuthenticated, PermReadAll, PermReadOwn, PermPasswordChangeOwn, PermKeySelf}
	case RoleInternalUser:
		return []Permission{PermAuthenticated, PermTeamMemberWrite, PermKeyWriteOwn, PermReadOwn, PermPasswordChangeOwn, PermKeySelf}
	case RoleInternalUserViewer:
		return []Permission{PermAuthenticated, PermReadOwn, PermPasswordChangeOwn, PermKeySelf}
	case RoleNone:
		return []Permission{PermKeySelf}
	}
	return nil
}

// RoleNone is the role of an ownerless API key: it may read its own record
// and pass /auth/verify, nothing else.
const RoleNone Role = ""

// Key types (LiteLLM's key_type). A key's type narrows what its owner's
// role allows; "service" additionally grants spend reporting.
const (
	KeyTypeDefault    = "default"
	KeyTypeLLMAPI     = "llm_api"
	KeyTypeManagement = "management"
	KeyTypeReadOnly   = "read_only"
	KeyTypeService    = "service"
	// KeyTypeSCIM is an identity provider's provisioning token: it may
	// call /scim/v2 and nothing else, not even /auth/verify.
	KeyTypeSCIM = "scim"
)

// ValidKeyType reports whether t is a known key type ("" means default).
func ValidKeyType(t string) bool {
	switch t {
	case "", KeyTypeDefault, KeyTypeLLMAPI, KeyTypeManagement, KeyTypeReadOnly, KeyTypeService, KeyTypeSCIM:
		return true
	}
	return false
}

// KeyTypeAllows reports whether a key of type t may exercise perm that its
// owner's role grants. llm_api keys are for model calls only; read_only
// keys only read; service keys only report spend.
func KeyTypeAllows(t string, perm Permission) bool {
	switch t {
	case KeyTypeLLMAPI:
		return perm == PermKeySelf
	case KeyTypeReadOnly:
		return perm == PermKeySelf || perm == PermReadOwn || perm == PermReadAll || perm == PermAuthenticated
	case KeyTypeService:
		return perm == PermKeySelf || perm == PermSpendReport
	case KeyTypeSCIM:
		return perm == PermSCIM
	}
	return true
}

// KeyTypeGrants reports whether a key of type t holds perm regardless of
// its owner's role (service keys are usually ownerless).
func KeyTypeGrants(t string, perm Permission) bool {
	return t == KeyTypeService && perm == PermSpendReport
}

// Can reports whether role holds perm. Unknown roles hold nothing.
func Can(role Role, perm Permission) bool {
	for _, p := range Grants(role) {
		if p == perm {
			return true
		}
	}
	return false
}

// Roles lists the four roles from most to least privileged.
func Roles() []Role {
	return []Role{RoleProxyAdmin, RoleProxyAdminViewer, RoleInternalUser, RoleInternalUserViewer}
}

// Permissions lists every permission, for tests that walk the table.
func Permissions() []Permission {
	return []Permission{PermAuthenticated, PermUserWrite, PermInvitationWrite, PermTeamWrite,
		PermTeamMemberWrite, PermReadAll, PermKeyWriteOwn, PermKeyWriteAny, PermReadOwn, PermPasswordChangeOwn,
		PermKeySelf, PermSpendReport, PermSCIM}
}

// KeyTypeCallsModels reports whether a key of type t may pass
// /auth/verify and the forwarding proxy: a SCIM token is a provisioning
// credential, never an LLM credential.
func KeyTypeCallsModels(t string) bool { return t != KeyTypeSCIM }

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool { return Rank(r) > 0 }

// Valid reports whether t is a team role.
func (t TeamRole) Valid() bool { return t == TeamRoleAdmin || t == TeamRoleUser }

// Rank orders roles by privilege (higher is more), for "highest wins"
// decisions such as SSO role mapping. Unknown roles rank 0.
func Rank(r Role) int {
	switch r {
	case RoleProxyAdmin:
		return 4
	case RoleProxyAdminViewer:
		return 3
	case RoleInternalUser:
		return 2
	case RoleInternalUserViewer:
		return 1
	}
	return 0
}

// RoleInfo is how a role is described to people (LiteLLM's
// /user/available_roles shape).
type RoleInfo struct {
	Description string `json:"description"`
	UILabel     string `json:"ui_label"`
}

// Describe returns the description of every role.
func Describe() map[Role]RoleInfo {
	return map[Role]RoleInfo{
		RoleProxyAdmin:         {"Can create, update and delete users, teams, invitations and keys, and see all spend.", "Admin (All Permissions)"},
		RoleProxyAdminViewer:   {"Can view all users, teams, keys and spend; cannot change anything.", "Admin (View Only)"},
		RoleInternalUser:       {"Can create, view, update and delete their own keys and see their own spend.", "Internal User (Create/Delete/View)"},
		RoleInternalUserViewer: {"Can view their own keys and spend; cannot create or delete keys.", "Internal User (View Only)"},
	}
}
