package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Default returns the built-in defaults, parsed from the Default column of
// Settings so that the documentation and the behaviour cannot drift.
func Default() *Config {
	c := &Config{}
	for _, s := range settingTable() {
		if err := applyDefault(c, s); err != nil {
			// The table is a constant; a test parses every default, so
			// this is a programming error, not an operator's.
			panic(fmt.Sprintf("config: built-in default of %s: %v", s.Name(), err))
		}
	}
	return c
}

func applyDefault(c *Config, s setting) error {
	if s.Default == "" {
		return nil
	}
	if s.node != nil {
		n, err := parseYAMLValue([]byte(s.Default))
		if err != nil {
			return err
		}
		return errors.Join(s.node(c, n)...)
	}
	return s.set(c, s.Default)
}

// Load builds the configuration: defaults, then the YAML file at path (if
// path is not empty), then the environment. lookupEnv reads one variable
// (os.LookupEnv in production); environ lists them all (os.Environ) and is
// used to find misspelled KEYGATE_* variables. When lookupEnv is nil the
// values are taken from environ.
//
// Every problem found, in parsing and in Validate, is returned together
// in one errors.Join error, one line each, naming the variable or YAML key.
// Secret values never appear in errors. An empty variable counts as unset,
// because .env files and compose files are full of "NAME=" lines.
func Load(path string, lookupEnv func(string) (string, bool), environ []string) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = environLookup(environ)
	}
	c := Default()
	table := settingTable()
	var errs []error
	if path != "" {
		errs = append(errs, loadFile(c, table, path)...)
	}
	errs = append(errs, applyEnv(c, table, lookupEnv, environ)...)
	errs = append(errs, c.problems()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// environLookup serves lookups from an os.Environ-style list.
func environLookup(environ []string) func(string) (string, bool) {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func loadFile(c *Config, table []setting, path string) []error {
	f, err := os.Open(path)
	if err != nil {
		return []error{fmt.Errorf("config file: %w", err)}
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return []error{fmt.Errorf("config file %s: %w", path, err)}
	}
	n, err := parseYAMLValue(data)
	if err != nil {
		return []error{fmt.Errorf("config file %s: %w", path, err)}
	}
	errs := applyYAML(c, table, n)
	for i, e := range errs {
		errs[i] = fmt.Errorf("config file %s: %w", path, e)
	}
	return errs
}

// applyEnv applies every set variable over c and reports bad values,
// conflicting aliases and unknown KEYGATE_* variables.
func applyEnv(c *Config, table []setting, lookupEnv func(string) (string, bool), environ []string) []error {
	var errs []error
	known := make(map[string]bool)
	for _, s := range table {
		if s.Env == "" {
			continue
		}
		names := append([]string{s.Env}, s.Aliases...)
		var used, val string
		conflict := false
		for _, name := range names {
			known[name] = true
			v, ok := lookupEnv(name)
			if !ok || v == "" {
				continue
			}
			if used == "" {
				used, val = name, v
				continue
			}
			if strings.TrimSpace(v) != strings.TrimSpace(val) && !conflict {
				conflict = true
				errs = append(errs, fmt.Errorf("%s and %s are both set, to different values; set only one", used, name))
			}
		}
		if used == "" || conflict {
			continue
		}
		if err := s.set(c, val); err != nil {
			errs = append(errs, valueError(s, used, val, err))
		}
	}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || known[name] || reservedEnv(name) {
			continue
		}
		msg := fmt.Sprintf("%s: unknown variable", name)
		if near := nearest(name, known); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", near)
		}
		errs = append(errs, errors.New(msg))
	}
	return errs
}

// valueError names where a bad value came from and why it is bad, quoting
// the value only when the setting is not secret.
func valueError(s setting, where, raw string, err error) error {
	if s.Secret {
		return fmt.Errorf("%s: %w", where, err)
	}
	return fmt.Errorf("%s=%q: %w", where, raw, err)
}

// nearest suggests the known KEYGATE_* name closest to a misspelling.
func nearest(name string, known map[string]bool) string {
	best, bestDist := "", 4 // suggest only close matches
	for k := range known {
		if !strings.HasPrefix(k, envPrefix) {
			continue
		}
		if d := editDistance(name, k); d < bestDist || (d == bestDist && k < best) {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
