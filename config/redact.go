package config

import (
	"net/url"
)

// Redacted returns every setting's current value for display (e.g. by
// `keygate check-config`), keyed by Setting.Name. Secret values show as
// "(set)" or "" (unset); DATABASE_URL shows its scheme, user, host and
// database but no password or query parameters. Iterate Settings() to
// print the values in documentation order.
func (c *Config) Redacted() map[string]string {
	out := make(map[string]string)
	for _, s := range settingTable() {
		val := s.get(c)
		if s.Secret && val != "" {
			if s.redact != nil {
				val = s.redact(val)
			} else {
				val = "(set)"
			}
		}
		out[s.Name()] = val
	}
	return out
}

// redactDSN keeps the parts of a database URL that help an operator check
// where Keygate connects. Key=value DSNs are not picked apart: any part of
// them might be the password.
func redactDSN(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "(set)"
	}
	safe := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	if u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			safe.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			safe.User = url.User(u.User.Username())
		}
	}
	return safe.String()
}
