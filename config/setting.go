package config

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Setting documents one configuration value: its environment variable, its
// YAML key and its default, as `keygate check-config` and the docs print it.
type Setting struct {
	// Env is the environment variable; "" for YAML-only settings.
	Env string
	// Aliases are other accepted variables. Setting two of the names to
	// different values is an error rather than a silent precedence rule.
	Aliases []string
	// YAMLKey is the dotted path in the YAML file, e.g. "server.addr".
	YAMLKey string
	// Default is the value used when neither the file nor the environment
	// sets one, in the syntax the variable accepts ("" means empty/off).
	Default     string
	Description string
	// Secret values are never printed (Redacted shows "(set)") and never
	// echoed in error messages.
	Secret bool
}

// Name is how messages refer to the setting: the variable, or the YAML key
// when there is no variable.
func (s Setting) Name() string {
	if s.Env != "" {
		return s.Env
	}
	return s.YAMLKey
}

// label names both spellings, so whichever the operator used is there.
func (s Setting) label() string {
	if s.Env != "" && s.YAMLKey != "" {
		return s.Env + " (" + s.YAMLKey + ")"
	}
	return s.Name()
}

// Settings returns every setting Keygate reads, in documentation order.
// The returned slice is the caller's to modify.
func Settings() []Setting {
	table := settingTable()
	out := make([]Setting, len(table))
	for i, s := range table {
		out[i] = s.Setting
		out[i].Aliases = slices.Clone(s.Aliases)
	}
	return out
}

// setting is a Setting plus how to read and write its Config field.
type setting struct {
	Setting
	// set parses raw (from env, a YAML scalar or Default) into the field.
	// Its error never contains raw. Nil for structured YAML-only settings.
	set func(c *Config, raw string) error
	// node decodes a structured YAML value; nil for scalar settings.
	node func(c *Config, n *yaml.Node) []error
	// get formats the current value for Redacted.
	get func(c *Config) string
	// ptr returns the field, so a test can prove every field is covered.
	ptr func(c *Config) any
	// list settings also accept a YAML sequence.
	list bool
	// redact, for a secret, shows the harmless part of the value (e.g. the
	// host of DATABASE_URL) instead of "(set)".
	redact func(string) string
}

func (s setting) secret() setting { s.Secret = true; return s }

func (s setting) redactWith(f func(string) string) setting { s.redact = f; return s }

func (s setting) alias(names ...string) setting {
	s.Aliases = append(slices.Clone(s.Aliases), names...)
	return s
}

func def(env, yamlKey, dflt, desc string) Setting {
	return Setting{Env: env, YAMLKey: yamlKey, Default: dflt, Description: desc}
}

func stringVar(s Setting, f func(*Config) *string) setting {
	return stringVarNorm(s, f, strings.TrimSpace)
}

// stringVarNorm stores norm(raw); enumerations are normalized here and
// judged by Validate, so a file-built Config gets the same checks.
func stringVarNorm(s Setting, f func(*Config) *string, norm func(string) string) setting {
	return setting{
		Setting: s,
		set:     func(c *Config, raw string) error { *f(c) = norm(raw); return nil },
		get:     func(c *Config) string { return *f(c) },
		ptr:     func(c *Config) any { return f(c) },
	}
}

func intVar(s Setting, f func(*Config) *int) setting {
	return setting{
		Setting: s,
		set: func(c *Config, raw string) error {
			n, err := parseInt(raw)
			if err != nil {
				return err
			}
			*f(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(*f(c)) },
		ptr: func(c *Config) any { return f(c) },
	}
}

func bytesVar[T int | int64](s Setting, f func(*Config) *T) setting {
	return setting{
		Setting: s,
		set: func(c *Config, raw string) error {
			n, err := parseBytes(raw)
			if err != nil {
				return err
			}
			if int64(T(n)) != n {
				return fmt.Errorf("size out of range")
			}
			*f(c) = T(n)
			return nil
		},
		get: func(c *Config) string { return strconv.FormatInt(int64(*f(c)), 10) },
		ptr: func(c *Config) any { return f(c) },
	}
}

func boolVar(s Setting, f func(*Config) *bool) setting {
	return setting{
		Setting: s,
		set: func(c *Config, raw string) error {
			b, err := parseBool(raw)
			if err != nil {
				return err
			}
			*f(c) = b
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(*f(c)) },
		ptr: func(c *Config) any { return f(c) },
	}
}

func durationVar(s Setting, f func(*Config) *time.Duration) setting {
	return setting{
		Setting: s,
		set: func(c *Config, raw string) error {
			d, err := parseDuration(raw)
			if err != nil {
				return err
			}
			*f(c) = d
			return nil
		},
		get: func(c *Config) string { return formatDuration(*f(c)) },
		ptr: func(c *Config) any { return f(c) },
	}
}

func listVar(s Setting, f func(*Config) *[]string, norm func(string) string) setting {
	return setting{
		Setting: s,
		set: func(c *Config, raw string) error {
			items := splitList(raw)
			if norm != nil {
				for i := range items {
					items[i] = norm(items[i])
				}
			}
			*f(c) = items
			return nil
		},
		get:  func(c *Config) string { return strings.Join(*f(c), ",") },
		ptr:  func(c *Config) any { return f(c) },
		list: true,
	}
}

func urlVar(s Setting, f func(*Config) **url.URL) setting {
	return setting{
		Setting: s,
		set: func(c *Config, raw string) error {
			if strings.TrimSpace(raw) == "" {
				*f(c) = nil
				return nil
			}
			u, err := parseURL(raw)
			if err != nil {
				return err
			}
			*f(c) = u
			return nil
		},
		get: func(c *Config) string {
			if u := *f(c); u != nil {
				return u.Redacted()
			}
			return ""
		},
		ptr: func(c *Config) any { return f(c) },
	}
}

// formatDuration prints d the way an operator writes it ("24h", "30d",
// "1h30m") rather than time.Duration's "24h0m0s"; parseDuration reads it back.
func formatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
