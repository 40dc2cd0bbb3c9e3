package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestSecretsNeverInErrors(t *testing.T) {
	env := map[string]string{
		"LITELLM_MASTER_KEY":      "HUSH-master",             // no sk- prefix
		"KEYGATE_SECRET":          "HUSH-short",              // too short
		"DATABASE_URL":            "mysql://u:HUSH-db@h/d",   // wrong scheme
		"UI_USERNAME":             " ",                       // password without user
		"UI_PASSWORD":             "HUSH-ui",                 //
		"GENERIC_CLIENT_SECRET":   "HUSH-generic",            // without client id
		"GOOGLE_CLIENT_SECRET":    "HUSH-google",             // without client id
		"MICROSOFT_CLIENT_SECRET": "HUSH-ms",                 // without client id
		"SMTP_HOST":               "smtp.example.com",        //
		"SMTP_PASSWORD":           "HUSH-smtp",               // without username
		"SMTP_TLS":                "none",                    // clear text
		"KEYGATE_UPSTREAM_KEY":    "HUSH-upstream",           // without URL
		"KEYGATE_METRICS_TOKEN":   "HUSH-metrics",            //
		"KEYGATE_MASTER_KEY":      "HUSH-other",              // conflicting alias
		"LITELLM_SALT_KEY":        "HUSH-salt-conflicting-1", // conflicting alias
	}
	_, err := load(t, "", env)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "HUSH")
	for _, want := range []string{"LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "DATABASE_URL", "UI_USERNAME", "GENERIC_CLIENT_ID",
		"GOOGLE_CLIENT_ID", "MICROSOFT_CLIENT_ID", "SMTP_USERNAME", "SMTP_TLS", "KEYGATE_UPSTREAM_URL"} {
		require.ErrorContains(t, err, want)
	}

	// The same through the YAML file: every secret set to a bad value.
	tree := map[string]any{}
	for _, s := range Settings() {
		if !s.Secret {
			continue
		}
		parts := strings.Split(s.YAMLKey, ".")
		node := tree
		for _, p := range parts[:len(parts)-1] {
			if node[p] == nil {
				node[p] = map[string]any{}
			}
			node = node[p].(map[string]any)
		}
		node[parts[len(parts)-1]] = "HUSH!"
	}
	body, err := yaml.Marshal(tree)
	require.NoError(t, err)
	_, err = load(t, writeYAML(t, string(body)+"auth:\n  ui_username: ''\n"), nil)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "HUSH")
	require.ErrorContains(t, err, `must start with "sk-"`)
	require.ErrorContains(t, err, "duplicate key", "the extra auth section")
	_, err = load(t, writeYAML(t, string(body)), nil)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "HUSH")
	require.ErrorContains(t, err, `LITELLM_MASTER_KEY (auth.master_key): must start with "sk-"`)
	require.ErrorContains(t, err, "KEYGATE_SECRET (auth.secret): must be at least 16")
	require.ErrorContains(t, err, "DATABASE_URL (database.url): must be a postgres")
}

func TestEverySecretSettingIsRedacted(t *testing.T) {
	for _, s := range Settings() {
		if !s.Secret {
			continue
		}
		for _, name := range append([]string{s.Env}, s.Aliases...) {
			t.Run(name, func(t *testing.T) {
				c, err := load(t, "", map[string]string{name: "sk-HUSH\x7f::"})
				if err != nil {
					require.NotContains(t, err.Error(), "HUSH")
					return
				}
				for k, v := range c.Redacted() {
					require.NotContains(t, v, "HUSH", k)
				}
			})
		}
	}
}

func TestRedacted(t *testing.T) {
	c, err := load(t, "", allEnv())
	require.NoError(t, err)
	r := c.Redacted()
	require.Len(t, r, len(Settings()))
	for _, s := range Settings() {
		require.Contains(t, r, s.Name())
		if s.Secret && s.Env != "DATABASE_URL" {
			require.Equal(t, "(set)", r[s.Name()], s.Name())
		}
	}
	for _, s := range Settings() {
		if !s.Secret {
			continue
		}
		secret := allEnv()[s.Env]
		for k, v := range r {
			require.NotContains(t, v, secret, "%s leaks %s", k, s.Env)
		}
	}
	require.Equal(t, "postgres://kg:xxxxx@db:5432/keygate", r["DATABASE_URL"])
	require.Equal(t, "https://keygate.example.com/base", r["PROXY_BASE_URL"])
	require.Equal(t, "30d", r["LITELLM_UI_SESSION_DURATION"])
	require.Equal(t, "10.0.0.0/8,192.168.1.1", r["KEYGATE_TRUSTED_PROXIES"])
	require.Equal(t, "2097152", r["KEYGATE_MAX_BODY_BYTES"])
	require.Equal(t, "true", r["KEYGATE_PASSWORD_LOGIN_DISABLED"])

	d := Default().Redacted()
	require.Empty(t, d["LITELLM_MASTER_KEY"], "unset secrets show empty")
	require.Equal(t, "127.0.0.1:4100", d["KEYGATE_ADDR"])
	require.Equal(t, "(set)", redactDSN("host=db password=HUSH"))
	require.Equal(t, "postgres://db/keygate", redactDSN("postgres://db/keygate?password=HUSH"))

	// Redacted values are accepted back as input, so check-config output
	// can be pasted into a .env (secrets aside, which come from allEnv).
	back := map[string]string{}
	for _, s := range Settings() {
		switch {
		case s.Secret:
			back[s.Env] = allEnv()[s.Env]
		case s.Env != "" && r[s.Name()] != "":
			back[s.Env] = r[s.Name()]
		}
	}
	c2, err := load(t, "", back)
	require.NoError(t, err)
	for _, s := range Settings() {
		if s.Env != "" && !s.Secret {
			require.Equal(t, r[s.Name()], c2.Redacted()[s.Name()], s.Name())
		}
	}
}
