package scim

import (
	"errors"
	"testing"

	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
)

// FuzzFilter: any client filter either converts to a condition or is a
// 400 invalidFilter — never a panic, never another error.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{`userName eq "a@b.c"`, `emails[type eq "work"].value eq "x"`, `not (active eq true)`,
		`(userName sw "a") or (displayName co "b" and meta.lastModified gt "2026-01-01T00:00:00Z")`, `members eq "u1"`,
		`emails[value eq "x" or type eq "home"]`, `userName eq "a\"b"`, `((((userName pr))))`, `x[`, `userName eq`, "\x00", `emails[type eq "w"].value eq`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, spec := range []filterSpec{userFilter, groupFilter} {
			_, err := parseFilter(s, spec)
			if err == nil {
				continue
			}
			var st scimType
			e, ok := apperr.As(err)
			if !ok || e.Kind != apperr.KindInvalid || !errors.As(err, &st) || st != typeInvalidFilter {
				t.Fatalf("parseFilter(%q) = %v, want a 400 invalidFilter", s, err)
			}
		}
	})
}

// FuzzPatchPath: any PATCH path applied to a user and a group either works
// or is a 400 — never a panic.
func FuzzPatchPath(f *testing.F) {
	for _, s := range []string{`emails[type eq "work"].value`, `name.givenName`, `members[value eq "x"]`, `active`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`, `emails[`, `members[value co "x"]`, `id`} {
		f.Add(s, "replace")
		f.Add(s, "remove")
	}
	f.Fuzz(func(t *testing.T, path, op string) {
		ops := []patchOp{{op: op, path: path, value: "v", hasValue: true}}
		u := service.DirectoryUser{ID: "u", UserName: "a@b.c", Emails: nil}
		g := service.DirectoryGroup{ID: "g", DisplayName: "g", Members: []service.DirectoryRef{{ID: "x"}}}
		for _, err := range []error{applyUserPatch(&u, ops), applyGroupPatch(&g, ops)} {
			if err == nil {
				continue
			}
			if e, ok := apperr.As(err); !ok || e.Kind != apperr.KindInvalid {
				t.Fatalf("path %q op %q: %v, want a 400", path, op, err)
			}
		}
	})
}
