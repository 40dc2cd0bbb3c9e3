package rbac

import "testing"

// TestTable spells out DESIGN.md's role table independently of Grants, so
// a change to either is caught.
func TestTable(t *testing.T) {
	want := map[Permission][]Role{
		PermUserWrite:         {RoleProxyAdmin},
		PermInvitationWrite:   {RoleProxyAdmin},
		PermTeamWrite:         {RoleProxyAdmin},
		PermTeamMemberWrite:   {RoleProxyAdmin, RoleInternalUser},
		PermReadAll:           {RoleProxyAdmin, RoleProxyAdminViewer},
		PermKeyWriteOwn:       {RoleProxyAdmin, RoleInternalUser},
		PermKeyWriteAny:       {RoleProxyAdmin},
		PermReadOwn:           {RoleProxyAdmin, RoleProxyAdminViewer, RoleInternalUser, RoleInternalUserViewer},
		PermPasswordChangeOwn: {RoleProxyAdmin, RoleProxyAdminViewer, RoleInternalUser, RoleInternalUserViewer},
		PermAuthenticated:     {RoleProxyAdmin, RoleProxyAdminViewer, RoleInternalUser, RoleInternalUserViewer},
		PermKeySelf:           {RoleProxyAdmin, RoleProxyAdminViewer, RoleInternalUser, RoleInternalUserViewer, RoleNone},
		PermSpendReport:       {RoleProxyAdmin},
		PermSCIM:              {}, // only the master key and ownerless scim keys (auth.Principal.Can)
	}
	if len(want) != len(Permissions()) {
		t.Fatalf("table covers %d permissions, Permissions() lists %d", len(want), len(Permissions()))
	}
	for _, perm := range Permissions() {
		allowed := map[Role]bool{}
		for _, r := range want[perm] {
			allowed[r] = true
		}
		for _, role := range append(Roles(), RoleNone, Role("superuser")) {
			if got := Can(role, perm); got != allowed[role] {
				t.Errorf("Can(%q, %s) = %v, want %v", role, perm, got, allowed[role])
			}
		}
	}
}

func TestKeyTypes(t *testing.T) {
	if KeyTypeAllows(KeyTypeLLMAPI, PermUserWrite) || KeyTypeAllows(KeyTypeReadOnly, PermKeyWriteOwn) {
		t.Fatal("restricted key types must not allow writes")
	}
	if !KeyTypeAllows(KeyTypeDefault, PermUserWrite) || !KeyTypeAllows("", PermUserWrite) {
		t.Fatal("default keys carry their owner's role")
	}
	if !KeyTypeGrants(KeyTypeService, PermSpendReport) || KeyTypeGrants(KeyTypeService, PermUserWrite) {
		t.Fatal("service keys may report spend and nothing else")
	}
	for _, perm := range Permissions() {
		if KeyTypeAllows(KeyTypeSCIM, perm) != (perm == PermSCIM) {
			t.Errorf("a scim key must be allowed %s only, got KeyTypeAllows(scim, %s) = %v", PermSCIM, perm, !(perm == PermSCIM))
		}
	}
	if KeyTypeCallsModels(KeyTypeSCIM) || !KeyTypeCallsModels("") || !KeyTypeCallsModels(KeyTypeService) {
		t.Fatal("only scim keys are kept away from the models")
	}
	if ValidKeyType("admin") || !ValidKeyType("llm_api") || !ValidKeyType(KeyTypeSCIM) {
		t.Fatal("ValidKeyType")
	}
}

func TestRoles(t *testing.T) {
	for _, r := range Roles() {
		if !r.Valid() || Describe()[r].UILabel == "" {
			t.Errorf("role %s lacks validity or description", r)
		}
	}
	if Role("internal_user_view_only").Valid() || RoleNone.Valid() {
		t.Error("unknown roles must be invalid")
	}
	if Rank(RoleProxyAdmin) <= Rank(RoleProxyAdminViewer) || Rank(RoleInternalUser) <= Rank(RoleInternalUserViewer) {
		t.Error("rank order")
	}
}
