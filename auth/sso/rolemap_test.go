package sso_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/rbac"
)

func TestMapRole(t *testing.T) {
	t.Parallel()
	m := map[string]string{
		"kg-admins":  "proxy_admin",
		"kg-audit":   "proxy_admin_viewer",
		"kg-eng":     "internal_user",
		"kg-readers": "internal_user_viewer",
		"kg-ops":     "proxy_admin",
	}
	groups := func(g ...string) sso.Identity { return sso.Identity{Groups: g} }
	cases := []struct {
		name      string
		cfg       sso.RoleMapping
		id        sso.Identity
		want      rbac.Role
		matched   string
		isDefault bool
		wantErr   error
		wantClaim string
	}{
		{"single group", sso.RoleMapping{Map: m}, groups("kg-eng"), rbac.RoleInternalUser, "kg-eng", false, nil, "groups"},
		{"highest wins", sso.RoleMapping{Map: m}, groups("kg-readers", "kg-audit", "kg-eng"), rbac.RoleProxyAdminViewer, "kg-audit", false, nil, "groups"},
		{"admin beats all", sso.RoleMapping{Map: m}, groups("kg-eng", "kg-admins", "kg-readers"), rbac.RoleProxyAdmin, "kg-admins", false, nil, "groups"},
		{"tie broken by value", sso.RoleMapping{Map: m}, groups("kg-ops", "kg-admins"), rbac.RoleProxyAdmin, "kg-admins", false, nil, "groups"},
		{"unmapped groups ignored", sso.RoleMapping{Map: m}, groups("marketing", "kg-eng"), rbac.RoleInternalUser, "kg-eng", false, nil, "groups"},
		{"case-sensitive", sso.RoleMapping{Map: m}, groups("KG-ADMINS"), rbac.RoleInternalUserViewer, "", true, nil, "groups"},
		{"unmapped → built-in default", sso.RoleMapping{Map: m}, groups("marketing"), rbac.RoleInternalUserViewer, "", true, nil, "groups"},
		{"no groups → configured default", sso.RoleMapping{Map: m, DefaultRole: "internal_user"}, groups(), rbac.RoleInternalUser, "", true, nil, "groups"},
		{"unmapped → deny", sso.RoleMapping{Map: m, DenyIfUnmapped: true}, groups("marketing"), "", "", false, sso.ErrDenied, "groups"},
		{"deny but mapped", sso.RoleMapping{Map: m, DenyIfUnmapped: true}, groups("kg-eng"), rbac.RoleInternalUser, "kg-eng", false, nil, "groups"},
		{"other claim (list)", sso.RoleMapping{Claim: "roles", Map: map[string]string{"Admin": "proxy_admin"}},
			sso.Identity{Groups: []string{"kg-eng"}, Claims: map[string]any{"roles": []any{"Reader", "Admin"}}}, rbac.RoleProxyAdmin, "Admin", false, nil, "roles"},
		{"other claim (string)", sso.RoleMapping{Claim: "role", Map: map[string]string{"eng": "internal_user"}},
			sso.Identity{Claims: map[string]any{"role": "eng"}}, rbac.RoleInternalUser, "eng", false, nil, "role"},
		{"other claim missing", sso.RoleMapping{Claim: "roles", Map: m},
			sso.Identity{Groups: []string{"kg-admins"}}, rbac.RoleInternalUserViewer, "", true, nil, "roles"},
		{"typo in mapped role", sso.RoleMapping{Map: map[string]string{"g": "internal_user_view_only"}}, groups("g"), "", "", false, sso.ErrConfig, ""},
		{"typo in default role", sso.RoleMapping{DefaultRole: "admin"}, groups(), "", "", false, sso.ErrConfig, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			role, ex, err := sso.MapRole(c.cfg, c.id)
			if c.wantErr != nil {
				require.ErrorIs(t, err, c.wantErr)
				require.Empty(t, role)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, role)
			require.Equal(t, c.matched, ex.MatchedValue)
			require.Equal(t, c.isDefault, ex.Default)
			require.Equal(t, c.wantClaim, ex.Claim)
			require.NotEmpty(t, ex.Rule)
		})
	}
}

func TestMapRoleDoesNotReorderGroups(t *testing.T) {
	t.Parallel()
	id := sso.Identity{Groups: []string{"b", "a"}}
	_, _, err := sso.MapRole(sso.RoleMapping{}, id)
	require.NoError(t, err)
	require.Equal(t, []string{"b", "a"}, id.Groups)
}

func TestEmailDomainAllowed(t *testing.T) {
	t.Parallel()
	allowed := []string{"example.com", "@Corp.Example.org"}
	cases := []struct {
		email   string
		allowed []string
		want    bool
	}{
		{"a@example.com", allowed, true},
		{"A@EXAMPLE.COM", allowed, true},
		{"a@corp.example.org", allowed, true},
		{"a@example.com.", allowed, true},
		{"a@evil-example.com", allowed, false},
		{"a@example.com.evil.io", allowed, false},
		{"a@sub.example.com", allowed, false},
		{"a@example.org", allowed, false},
		{"a@example.com@evil.io", allowed, false},
		{"example.com", allowed, false},
		{"@example.com", allowed, false},
		{"a@", allowed, false},
		{"", allowed, false},
		{"a b@example.com", allowed, false},
		{"a@example.com", nil, true},
		{"not-an-email", nil, false},
		{"a@example.com", []string{""}, false},
	}
	for _, c := range cases {
		require.Equal(t, c.want, sso.EmailDomainAllowed(c.email, c.allowed), "%q in %v", c.email, c.allowed)
	}
}
