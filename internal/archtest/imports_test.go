// Package archtest enforces the dependency rules of DESIGN.md ("Packages")
// with `go list`, so a wrong import fails the build's tests rather than a
// review.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/keygate/keygate"

// imports maps each package of the module to its direct, non-test imports.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m[strings.TrimPrefix(f[0], mod+"/")] = f[1:]
	}
	return m
}

func ours(imp string) (string, bool) {
	if imp == mod {
		return "", true
	}
	if strings.HasPrefix(imp, mod+"/") {
		return strings.TrimPrefix(imp, mod+"/"), true
	}
	return "", false
}

func under(pkg, prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }

func TestImportRules(t *testing.T) {
	pkgs := imports(t)
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for pkg, imps := range pkgs {
		for _, imp := range imps {
			if strings.HasPrefix(imp, "gorm.io/") || imp == "github.com/glebarez/sqlite" {
				if !under(pkg, "store/gormstore") && !under(pkg, "internal/testutil") {
					t.Errorf("%s imports %s: only store/gormstore may import GORM", pkg, imp)
				}
			}
			if strings.HasPrefix(imp, "github.com/gin-gonic/") {
				if !under(pkg, "api") && !under(pkg, "ui") && pkg != "internal/httperr" {
					t.Errorf("%s imports %s: only api, ui and internal/httperr may import Gin", pkg, imp)
				}
			}
			dep, mine := ours(imp)
			if !mine {
				continue
			}
			if reason := forbidden(pkg, dep); reason != "" {
				t.Errorf("%s imports %s: %s", pkg, dep, reason)
			}
		}
	}
}

// forbidden returns why pkg may not import dep, or "".
func forbidden(pkg, dep string) string {
	switch {
	case under(dep, "cmd"):
		return "nothing imports cmd"
	case dep == "config" && !under(pkg, "cmd"):
		return "config is read only by cmd"
	case pkg == "config" || pkg == "rbac" || pkg == "store":
		return pkg + " imports nothing of Keygate's"
	case under(pkg, "store/") && !under(dep, "store") && !under(dep, "internal/testutil"):
		return "storage packages import only store"
	case under(pkg, "auth") && !under(dep, "auth") && dep != "store" && dep != "rbac":
		return "auth may import only store and rbac"
	case under(pkg, "api") && under(dep, "ui"), under(pkg, "ui") && under(dep, "api"):
		return "api and ui are two faces over one service layer and never import each other"
	case under(pkg, "internal/service") && (under(dep, "api") || under(dep, "ui")):
		return "the service layer does not know its faces"
	case under(pkg, "internal/") && !under(pkg, "internal/testutil") && pkg != "internal/app" && (under(dep, "api") || under(dep, "ui")):
		return "internal packages do not import the faces (only internal/app, the composition root)"
	}
	return ""
}

func TestRulesCatchViolations(t *testing.T) {
	cases := map[[2]string]bool{
		{"api", "ui"}:                 true,
		{"ui", "api"}:                 true,
		{"auth/session", "api"}:       true,
		{"store", "rbac"}:             true,
		{"api", "config"}:             true,
		{"internal/service", "api"}:   true,
		{"cmd/keygate", "config"}:     false,
		{"api", "internal/service"}:   false,
		{"auth/session", "store"}:     false,
		{"store/gormstore", "store"}:  false,
		{"internal/service", "auth"}:  false,
		{"internal/service", "store"}: false,
	}
	for c, want := range cases {
		if got := forbidden(c[0], c[1]) != ""; got != want {
			t.Errorf("forbidden(%s → %s) = %v, want %v", c[0], c[1], got, want)
		}
	}
}
