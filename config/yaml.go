package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The YAML file is walked as a node tree against the settings table rather
// than decoded into a mirror struct: the table stays the one list of keys,
// and an unknown or misplaced key is reported with its line and a
// suggestion. Structured values (sso.role_mapping, model_prices) check
// their keys the same way before yaml decodes them into typed structs.

// parseYAMLValue parses exactly one YAML document; nil means empty.
func parseYAMLValue(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("want exactly one YAML document")
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// entry is one key/value pair of a mapping.
type entry struct {
	key   string
	line  int
	value *yaml.Node
}

// entries lists a mapping's pairs, reporting non-string and duplicate keys
// (yaml only checks duplicates when decoding into Go values, not nodes).
func entries(n *yaml.Node, path string) ([]entry, []error) {
	if n.Kind != yaml.MappingNode {
		return nil, []error{fmt.Errorf("line %d: %s: want a mapping", n.Line, orRoot(path))}
	}
	var out []entry
	var errs []error
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Errorf("line %d: %s: keys must be strings", k.Line, orRoot(path)))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			errs = append(errs, fmt.Errorf("line %d: %s: duplicate key (first at line %d)", k.Line, join(path, k.Value), first))
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, entry{key: k.Value, line: k.Line, value: v})
	}
	return out, errs
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// applyYAML applies a parsed file over c.
func applyYAML(c *Config, table []setting, root *yaml.Node) []error {
	root = resolve(root)
	if isNull(root) {
		return nil
	}
	byKey := make(map[string]setting, len(table))
	children := make(map[string][]string) // section path → its keys
	for _, s := range table {
		byKey[s.YAMLKey] = s
		parts := strings.Split(s.YAMLKey, ".")
		for i := range parts {
			parent := strings.Join(parts[:i], ".")
			if !slices.Contains(children[parent], parts[i]) {
				children[parent] = append(children[parent], parts[i])
			}
		}
	}
	var errs []error
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		es, bad := entries(n, path)
		errs = append(errs, bad...)
		for _, e := range es {
			key := join(path, e.key)
			if s, ok := byKey[key]; ok {
				errs = append(errs, applyYAMLSetting(c, s, e)...)
				continue
			}
			if _, ok := children[key]; !ok {
				msg := fmt.Sprintf("line %d: %s: unknown key", e.line, key)
				if near := nearestKey(e.key, children[path]); near != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", join(path, near))
				}
				errs = append(errs, errors.New(msg))
				continue
			}
			if !isNull(e.value) {
				walk(e.value, key)
			}
		}
	}
	walk(root, "")
	return errs
}

func nearestKey(key string, candidates []string) string {
	best, bestDist := "", 3
	for _, k := range candidates {
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// applyYAMLSetting applies one value. A null value ("key:" or "key: ~")
// leaves the default in place, like an empty environment variable.
func applyYAMLSetting(c *Config, s setting, e entry) []error {
	n := e.value
	if isNull(n) {
		return nil
	}
	if s.node != nil {
		return s.node(c, n)
	}
	where := fmt.Sprintf("line %d: %s", e.line, s.YAMLKey)
	var raw string
	switch {
	case n.Kind == yaml.ScalarNode:
		raw = n.Value
	case n.Kind == yaml.SequenceNode && s.list:
		items := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			item = resolve(item)
			if item.Kind != yaml.ScalarNode {
				return []error{fmt.Errorf("%s: list items must be single values", where)}
			}
			items = append(items, item.Value)
		}
		raw = strings.Join(items, ",")
	case s.list:
		return []error{fmt.Errorf("%s: want a value or a list", where)}
	default:
		return []error{fmt.Errorf("%s: want a single value", where)}
	}
	if err := s.set(c, raw); err != nil {
		return []error{valueError(s, where, raw, err)}
	}
	return nil
}

// decodeStrict decodes a mapping into out after checking that it has only
// the allowed keys, so a typo is an error and not a silently ignored key.
func decodeStrict(n *yaml.Node, path string, out any, allowed ...string) []error {
	es, errs := entries(n, path)
	for _, e := range es {
		if !slices.Contains(allowed, e.key) {
			errs = append(errs, fmt.Errorf("line %d: %s: unknown key (want one of %s)", e.line, join(path, e.key), strings.Join(allowed, ", ")))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if err := n.Decode(out); err != nil {
		return []error{fmt.Errorf("%s: %w", path, err)}
	}
	return nil
}

func roleMappingSetting() setting {
	return setting{
		Setting: def("", "sso.role_mapping", "{default_role: internal_user_viewer}",
			"YAML only: claim (e.g. groups), map (claim value: role), default_role, deny_if_unmapped"),
		node: func(c *Config, n *yaml.Node) []error {
			return decodeStrict(n, "sso.role_mapping", &c.SSO.RoleMapping,
				"claim", "map", "default_role", "deny_if_unmapped")
		},
		get: func(c *Config) string {
			rm := c.SSO.RoleMapping
			return fmt.Sprintf("claim=%q mappings=%d default_role=%q deny_if_unmapped=%t",
				rm.Claim, len(rm.Map), rm.DefaultRole, rm.DenyIfUnmapped)
		},
		ptr: func(c *Config) any { return &c.SSO.RoleMapping },
	}
}

func modelPricesSetting() setting {
	return setting{
		Setting: def("", "model_prices", "",
			"YAML only: model name: {input_per_million, output_per_million} in USD"),
		node: func(c *Config, n *yaml.Node) []error {
			es, errs := entries(n, "model_prices")
			for _, e := range es {
				path := "model_prices." + e.key
				var p ModelPrice
				if bad := decodeStrict(e.value, path, &p, "input_per_million", "output_per_million"); bad != nil {
					errs = append(errs, bad...)
					continue
				}
				if c.ModelPrices == nil {
					c.ModelPrices = make(map[string]ModelPrice)
				}
				c.ModelPrices[e.key] = p
			}
			return errs
		},
		get: func(c *Config) string {
			var parts []string
			for _, m := range slices.Sorted(maps.Keys(c.ModelPrices)) {
				p := c.ModelPrices[m]
				parts = append(parts, fmt.Sprintf("%s=%g/%g", m, p.InputPerMillion, p.OutputPerMillion))
			}
			return strings.Join(parts, ", ")
		},
		ptr: func(c *Config) any { return &c.ModelPrices },
	}
}
