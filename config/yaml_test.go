package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const fullYAML = `
server:
  addr: "0.0.0.0:9000"
  read_header_timeout: 3s
  max_body_bytes: 2MiB
  trusted_proxies:
    - 10.0.0.0/8
    - ::1
database:
  data_dir: /srv/keygate
  max_open_conns: 7
auth:
  master_key: sk-from-file
  session_ttl: 7d
  password_login_disabled: false
urls:
  proxy_base_url: https://keygate.example.com
sso:
  generic:
    client_id: kg
    issuer: https://idp.example.com
  allowed_email_domains: [example.com, "@Corp.Example.org"]
  teams_from_groups: true
  role_mapping:
    claim: groups
    map:
      kg-admins: proxy_admin
      auditors: proxy_admin_viewer
      "123": internal_user
    default_role: internal_user_viewer
    deny_if_unmapped: false
smtp:
  host: ~
  port: 2525
upstream:
  paths: /v1/, /openai/
model_prices:
  gpt-4o:
    input_per_million: 2.5
    output_per_million: 10
  small: {input_per_million: 0.1, output_per_million: 0}
`

func TestYAMLFile(t *testing.T) {
	c, err := load(t, writeYAML(t, fullYAML), nil)
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:9000", c.Server.Addr)
	require.Equal(t, 3*time.Second, c.Server.ReadHeaderTimeout)
	require.Equal(t, int64(2<<20), c.Server.MaxBodyBytes)
	require.Equal(t, []string{"10.0.0.0/8", "::1"}, c.Server.TrustedProxies)
	require.Equal(t, "/srv/keygate", c.Database.DataDir)
	require.Equal(t, 7, c.Database.MaxOpenConns)
	require.Equal(t, 10, c.Database.MaxIdleConns, "unset keys keep defaults")
	require.Equal(t, "sk-from-file", c.Auth.MasterKey)
	require.Equal(t, 7*24*time.Hour, c.Auth.SessionTTL)
	require.Equal(t, "https://keygate.example.com", c.URLs.ProxyBaseURL.String())
	require.Equal(t, "kg", c.SSO.Generic.ClientID)
	require.Equal(t, "openid email profile", c.SSO.Generic.Scope)
	require.Equal(t, []string{"example.com", "corp.example.org"}, c.SSO.AllowedEmailDomains)
	require.True(t, c.SSO.TeamsFromGroups)
	require.Equal(t, RoleMapping{
		Claim: "groups",
		Map: map[string]string{
			"kg-admins": RoleProxyAdmin, "auditors": RoleProxyAdminViewer, "123": RoleInternalUser,
		},
		DefaultRole: RoleInternalUserViewer,
	}, c.SSO.RoleMapping)
	require.Empty(t, c.SMTP.Host)
	require.Equal(t, 2525, c.SMTP.Port)
	require.Equal(t, []string{"/v1/", "/openai/"}, c.Upstream.Paths)
	require.Equal(t, map[string]ModelPrice{
		"gpt-4o": {InputPerMillion: 2.5, OutputPerMillion: 10},
		"small":  {InputPerMillion: 0.1},
	}, c.ModelPrices)
}

func TestYAMLRoleMappingKeepsUnsetDefaults(t *testing.T) {
	c, err := load(t, writeYAML(t, "sso:\n  role_mapping:\n    claim: groups\n    map: {admins: proxy_admin}\n"), nil)
	require.NoError(t, err)
	require.Equal(t, RoleInternalUserViewer, c.SSO.RoleMapping.DefaultRole)
}

func TestEnvOverridesYAML(t *testing.T) {
	path := writeYAML(t, "server:\n  addr: ':9000'\nauth:\n  master_key: sk-file\n")
	c, err := load(t, path, map[string]string{"KEYGATE_ADDR": ":9100", "KEYGATE_MASTER_KEY": "sk-env"})
	require.NoError(t, err)
	require.Equal(t, ":9100", c.Server.Addr)
	require.Equal(t, "sk-env", c.Auth.MasterKey)
}

func TestEmptyYAMLFile(t *testing.T) {
	for _, body := range []string{"", "# only a comment\n", "---\n"} {
		c, err := load(t, writeYAML(t, body), nil)
		require.NoError(t, err, "%q", body)
		require.Equal(t, Default(), c)
	}
}

func TestYAMLErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr []string
	}{
		{"unknown top-level key", "servr:\n  addr: ':1'\n",
			[]string{"line 1: servr: unknown key (did you mean server?)"}},
		{"unknown nested key", "server:\n  adr: ':1'\n",
			[]string{"line 2: server.adr: unknown key (did you mean server.addr?)"}},
		{"unknown role mapping key", "sso:\n  role_mapping:\n    claims: groups\n",
			[]string{"line 3: sso.role_mapping.claims: unknown key"}},
		{"unknown model price key", "model_prices:\n  gpt:\n    input: 1\n",
			[]string{"line 3: model_prices.gpt.input: unknown key"}},
		{"model price not a number", "model_prices:\n  gpt:\n    input_per_million: lots\n",
			[]string{"model_prices.gpt", "line 3"}},
		{"duplicate key", "server:\n  addr: ':1'\n  addr: ':2'\n",
			[]string{"line 3: server.addr: duplicate key (first at line 2)"}},
		{"mapping where a value belongs", "server:\n  addr:\n    host: x\n",
			[]string{"line 2: server.addr: want a single value"}},
		{"list where a single value belongs", "server:\n  addr: [a, b]\n",
			[]string{"server.addr: want a single value"}},
		{"value where a section belongs", "server: ':4100'\n",
			[]string{"server: want a mapping"}},
		{"bad duration", "auth:\n  token_ttl: soon\n",
			[]string{`line 2: auth.token_ttl="soon": not a duration`}},
		{"secret not echoed", "auth:\n  master_key: notsk-HUSH\n",
			[]string{"LITELLM_MASTER_KEY (auth.master_key)", `must start with "sk-"`}},
		{"syntax error", "server:\n  addr: [\n", []string{"keygate.yaml"}},
		{"two documents", "server: {}\n---\nserver: {}\n", []string{"exactly one YAML document"}},
		{"env-style key in file", "KEYGATE_ADDR: ':1'\n", []string{"KEYGATE_ADDR: unknown key"}},
		{"validation of file values", "sso:\n  role_mapping:\n    claim: groups\n    map: {admins: superuser}\n    default_role: root\n",
			[]string{`map["admins"]: "superuser" is not one of`, `default_role "root" is not one of`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, writeYAML(t, tt.body), nil)
			require.Error(t, err)
			for _, want := range tt.wantErr {
				require.ErrorContains(t, err, want)
			}
			require.NotContains(t, err.Error(), "HUSH")
		})
	}
}

func TestYAMLErrorsAreCollected(t *testing.T) {
	body := "server:\n  adr: x\n  max_body_bytes: lots\nlog:\n  level: loud\n"
	_, err := load(t, writeYAML(t, body), map[string]string{"SMTP_PORT": "0"})
	require.Error(t, err)
	for _, want := range []string{"server.adr", "server.max_body_bytes", "log.level", "SMTP_PORT"} {
		require.ErrorContains(t, err, want)
	}
}

func TestMissingYAMLFile(t *testing.T) {
	_, err := load(t, "/nonexistent/keygate.yaml", nil)
	require.ErrorContains(t, err, "config file")
	require.ErrorContains(t, err, "no such file")
}
