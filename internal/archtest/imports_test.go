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

// imports maps each package of the module to the packages its non-test
// code imports: field "Imports" gives the direct ones, "Deps" every
// package it depends on directly or not (`go list -deps`).
func imports(t *testing.T, field string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .`+field+` " "}}`, mod+"/...").CombinedOutput()
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

// under reports whether pkg is prefix or below it. prefix names a package
// ("store"), never ends in '/'.
func under(pkg, prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }

// below reports whether pkg is strictly below prefix ("store/gormstore"
// is below "store"; "store" is not).
func below(pkg, prefix string) bool { return strings.HasPrefix(pkg, prefix+"/") }

// TestImportRules checks the libraries rule on direct imports (who writes
// GORM or Gin code) and Keygate's own rules on every dependency, so a rule
// cannot be dodged through an intermediate package.
func TestImportRules(t *testing.T) {
	direct, deps := imports(t, "Imports"), imports(t, "Deps")
	if len(direct) < 5 {
		t.Fatalf("go list found only %d packages", len(direct))
	}
	for pkg, imps := range direct {
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
		}
	}
	for pkg, imps := range deps {
		for _, imp := range imps {
			dep, mine := ours(imp)
			if !mine {
				continue
			}
			if reason := forbidden(pkg, dep); reason != "" {
				t.Errorf("%s depends on %s: %s", pkg, dep, reason)
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
	case below(pkg, "store") && !under(dep, "store") && !under(dep, "internal/testutil"):
		return "storage packages import only store"
	case under(dep, "store/gormstore") && !under(pkg, "store") && !under(pkg, "cmd") && pkg != "internal/app" &&
		!under(pkg, "internal/testutil") && !under(pkg, "internal/litellmimport") && !under(pkg, "bench"):
		return "only the composition root (cmd, internal/app) and tools choose the database; the faces and the service layer see store interfaces"
	case under(pkg, "auth") && !under(dep, "auth") && dep != "store" && dep != "rbac":
		return "auth may import only store and rbac"
	case under(pkg, "api") && under(dep, "ui"), under(pkg, "ui") && under(dep, "api"):
		return "api and ui are two faces over one service layer and never import each other"
	case under(pkg, "internal/service") && (under(dep, "api") || under(dep, "ui")):
		return "the service layer does not know its faces"
	case below(pkg, "internal") && !under(pkg, "internal/testutil") && pkg != "internal/app" && (under(dep, "api") || under(dep, "ui")):
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
		// rules that a trailing '/' once kept from ever firing
		{"store/gormstore", "auth"}:    true,
		{"store/storetest", "rbac"}:    true,
		{"internal/upstream", "api"}:   true,
		{"internal/service", "ui"}:     true,
		{"internal/app", "api"}:        false,
		{"internal/testutil/x", "api"}: false,
		// nobody but the composition root picks the database
		{"api", "store/gormstore"}:              true,
		{"ui", "store/gormstore"}:               true,
		{"internal/service", "store/gormstore"}: true,
		{"internal/access", "store/gormstore"}:  true,
		{"auth", "store/gormstore"}:             true,
		{"internal/app", "store/gormstore"}:     false,
		{"cmd/keygate", "store/gormstore"}:      false,
	}
	for c, want := range cases {
		if got := forbidden(c[0], c[1]) != ""; got != want {
			t.Errorf("forbidden(%s → %s) = %v, want %v", c[0], c[1], got, want)
		}
	}
}
