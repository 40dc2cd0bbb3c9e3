package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fieldKey identifies a field by address and type, because a struct and
// its first field share an address.
type fieldKey struct {
	addr uintptr
	typ  reflect.Type
}

func TestSettingsCoverEveryConfigField(t *testing.T) {
	c := &Config{}
	covered := map[fieldKey]string{}
	for _, s := range settingTable() {
		p := reflect.ValueOf(s.ptr(c))
		require.Equal(t, reflect.Pointer, p.Kind(), s.Name())
		k := fieldKey{p.Pointer(), p.Elem().Type()}
		require.NotContains(t, covered, k, "%s and %s write the same field", covered[k], s.Name())
		covered[k] = s.Name()
	}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		for i := range v.NumField() {
			f, sf := v.Field(i), v.Type().Field(i)
			name := path + "." + sf.Name
			if _, ok := covered[fieldKey{f.Addr().Pointer(), f.Type()}]; ok {
				continue
			}
			if f.Kind() == reflect.Struct {
				walk(f, name)
				continue
			}
			t.Errorf("Config%s has no setting", name)
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
}

func TestSettingsTableIsConsistent(t *testing.T) {
	require.NotPanics(t, func() { Default() })
	names := map[string]bool{}
	keys := map[string]bool{}
	for _, s := range Settings() {
		require.NotEmpty(t, s.YAMLKey, s.Name())
		require.NotEmpty(t, s.Description, s.Name())
		require.Regexp(t, `^[a-z_]+(\.[a-z_]+)*$`, s.YAMLKey)
		require.False(t, keys[s.YAMLKey], "duplicate YAML key %s", s.YAMLKey)
		keys[s.YAMLKey] = true
		for _, n := range append([]string{s.Env}, s.Aliases...) {
			if n == "" {
				continue
			}
			require.Regexp(t, `^[A-Z][A-Z0-9_]*$`, n)
			require.False(t, names[n], "duplicate variable %s", n)
			require.False(t, reservedEnv(n), "%s is reserved", n)
			names[n] = true
		}
	}
	// Settings hands out copies: changing them does not change the table.
	s := Settings()
	s[0].Env = "CHANGED"
	for i := range s {
		s[i].Aliases = append(s[i].Aliases, "X")
	}
	for _, fresh := range Settings() {
		require.NotEqual(t, "CHANGED", fresh.Env)
		require.NotContains(t, fresh.Aliases, "X")
	}
}

// TestSettingsCoverEveryEnvNameInSource scans this package's source for
// string literals that look like environment variable names, so a name
// used in a message or check but missing from Settings is caught.
func TestSettingsCoverEveryEnvNameInSource(t *testing.T) {
	known := map[string]bool{}
	for _, s := range Settings() {
		known[s.Env] = true
		for _, a := range s.Aliases {
			known[a] = true
		}
	}
	envLike := regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)
	nameInText := regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b`)
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	seen := 0
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			for _, name := range nameInText.FindAllString(s, -1) {
				if !envLike.MatchString(name) || name == "UTF_8" {
					continue
				}
				seen++
				if !known[name] && !reservedEnv(name) {
					t.Errorf("%s: %q is not in Settings()", fset.Position(lit.Pos()), name)
				}
			}
			return true
		})
	}
	require.Greater(t, seen, 60, "the scan found too few names; is it broken?")
}
