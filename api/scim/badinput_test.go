package scim_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBadInputIsASCIMErrorAndChangesNothing: every malformed request gets
// SCIM's error schema with the right status and scimType, and the
// database is exactly as before.
func TestBadInputIsASCIMErrorAndChangesNothing(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		id := e.create("victim@example.com", map[string]any{"displayName": "Victim"})
		gid := e.ok(e.scim(http.MethodPost, "/Groups", group("victims", id)), http.StatusCreated)["id"].(string)
		userSchema := []string{"urn:ietf:params:scim:schemas:core:2.0:User"}
		cases := []struct {
			name     string
			method   string
			path     string
			body     any
			status   int
			scimType string
		}{
			{"malformed filter", http.MethodGet, "/Users?" + filterQ(`userName eq`), nil, 400, "invalidFilter"},
			{"filter with trailing garbage", http.MethodGet, "/Users?" + filterQ(`userName eq "a" garbage`), nil, 400, "invalidFilter"},
			{"filter on an unknown attribute", http.MethodGet, "/Users?" + filterQ(`favoriteColor eq "blue"`), nil, 400, "invalidFilter"},
			{"filter on an unfilterable attribute", http.MethodGet, "/Users?" + filterQ(`name.givenName eq "Ada"`), nil, 400, "invalidFilter"},
			{"filter with a foreign schema", http.MethodGet, "/Users?" + filterQ(`urn:example:x:1.0:User:foo eq "1"`), nil, 400, "invalidFilter"},
			{"filter comparing a boolean with text", http.MethodGet, "/Users?" + filterQ(`active eq "maybe"`), nil, 400, "invalidFilter"},
			{"filter with a bad date", http.MethodGet, "/Users?" + filterQ(`meta.lastModified gt "yesterday"`), nil, 400, "invalidFilter"},
			{"filter with a number for text", http.MethodGet, "/Users?" + filterQ(`userName eq 5`), nil, 400, "invalidFilter"},
			{"filter too long", http.MethodGet, "/Users?" + filterQ(`userName eq "`+strings.Repeat("a", 1100)+`"`), nil, 400, "invalidFilter"},
			{"filter nested too deeply", http.MethodGet, "/Users?" + filterQ(strings.Repeat("(", 70)+`userName pr`+strings.Repeat(")", 70)), nil, 400, "invalidFilter"},
			{"group filter on members with co", http.MethodGet, "/Groups?" + filterQ(`members co "x"`), nil, 400, "invalidFilter"},
			{"count not a number", http.MethodGet, "/Users?count=lots", nil, 400, "invalidValue"},
			{"wrong schema: a Group posted to /Users", http.MethodPost, "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
				"userName": "g@example.com"}, 400, "invalidSyntax"},
			{"no schemas", http.MethodPost, "/Users", map[string]any{"userName": "n@example.com"}, 400, "invalidSyntax"},
			{"schemas not a list", http.MethodPost, "/Users", map[string]any{"schemas": "urn:ietf:params:scim:schemas:core:2.0:User", "userName": "n@example.com"}, 400, "invalidSyntax"},
			{"a User posted to /Groups", http.MethodPost, "/Groups", user("x@example.com", nil), 400, "invalidSyntax"},
			{"malformed JSON", http.MethodPost, "/Users", `{"schemas": [`, 400, "invalidSyntax"},
			{"two JSON values", http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a@example.com"} {}`, 400, "invalidSyntax"},
			{"a JSON array", http.MethodPost, "/Users", `[]`, 400, "invalidSyntax"},
			{"empty body", http.MethodPost, "/Users", ``, 400, "invalidSyntax"},
			{"userName missing", http.MethodPost, "/Users", map[string]any{"schemas": userSchema}, 400, "invalidValue"},
			{"userName not an e-mail", http.MethodPost, "/Users", user("ada", nil), 400, "invalidValue"},
			{"userName a number", http.MethodPost, "/Users", map[string]any{"schemas": userSchema, "userName": 7}, 400, "invalidValue"},
			{"active of the wrong type", http.MethodPost, "/Users", user("t@example.com", map[string]any{"active": 1}), 400, "invalidValue"},
			{"a bad e-mail in emails", http.MethodPost, "/Users", user("t@example.com", map[string]any{"emails": []any{map[string]any{"value": "not mail"}}}), 400, "invalidValue"},
			{"name not an object", http.MethodPost, "/Users", user("t@example.com", map[string]any{"name": "Ada"}), 400, "invalidValue"},
			{"control characters", http.MethodPost, "/Users", user("t@example.com", map[string]any{"displayName": "a\x00b"}), 400, "invalidValue"},
			{"duplicate userName", http.MethodPost, "/Users", user("VICTIM@example.com", nil), 409, "uniqueness"},
			{"PATCH with the wrong schema", http.MethodPatch, "/Users/" + id, map[string]any{"schemas": userSchema,
				"Operations": []any{map[string]any{"op": "replace", "path": "displayName", "value": "x"}}}, 400, "invalidSyntax"},
			{"PATCH without operations", http.MethodPatch, "/Users/" + id, patch(), 400, "invalidSyntax"},
			{"PATCH with an unknown op", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "merge", "path": "displayName", "value": "x"}), 400, "invalidSyntax"},
			{"PATCH of an unknown attribute", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "replace", "path": "favoriteColor", "value": "x"}), 400, "invalidPath"},
			{"PATCH with a malformed path", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "replace", "path": "emails[type eq", "value": "x"}), 400, "invalidPath"},
			{"PATCH of a foreign schema", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "replace", "path": "urn:example:x:1.0:User:foo", "value": "x"}), 400, "invalidPath"},
			{"PATCH of id", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "replace", "path": "id", "value": "other"}), 400, "mutability"},
			{"PATCH of groups", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "add", "path": "groups", "value": []any{map[string]any{"value": gid}}}), 400, "mutability"},
			{"remove without a path", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "remove", "value": map[string]any{"displayName": "x"}}), 400, "noTarget"},
			{"replace of a missing e-mail", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "replace", "path": `emails[value eq "nobody@example.com"].type`, "value": "home"}), 400, "noTarget"},
			{"a failing op after a good one", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "replace", "path": "displayName", "value": "Changed"},
				map[string]any{"op": "replace", "path": "nope", "value": "x"}), 400, "invalidPath"},
			{"PATCH making userName invalid", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "remove", "path": "userName"}), 400, "invalidValue"},
			{"group without displayName", http.MethodPost, "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}}, 400, "invalidValue"},
			{"group member without value", http.MethodPatch, "/Groups/" + gid, patch(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"display": "x"}}}), 400, "invalidValue"},
			{"group member add by filter", http.MethodPatch, "/Groups/" + gid, patch(map[string]any{"op": "add", "path": `members[value eq "x"]`, "value": "x"}), 400, "invalidPath"},
			{"text/plain body", http.MethodPost, "/Users", "text", 400, "invalidSyntax"},
			{"unknown user", http.MethodGet, "/Users/no-such-user", nil, 404, ""},
			{"PUT unknown user", http.MethodPut, "/Users/no-such-user", user("nobody@example.com", nil), 404, ""},
			{"DELETE unknown group", http.MethodDelete, "/Groups/no-such-group", nil, 404, ""},
			{"unknown endpoint", http.MethodGet, "/Bulk", nil, 404, ""},
			{"wrong method", http.MethodPost, "/Users/" + id, user("x@example.com", nil), 405, ""},
			{"1 MB body", http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"big@example.com","displayName":"` +
				strings.Repeat("x", 1<<20) + `"}`, 413, ""},
		}
		for _, tc := range cases {
			before := e.snapshot()
			var r response
			if tc.name == "text/plain body" {
				r = e.doContentType(tc.method, "/scim/v2"+tc.path, "text/plain", tc.body.(string))
			} else {
				r = e.scim(tc.method, tc.path, tc.body)
			}
			requireSCIMError(t, r, tc.status, tc.scimType)
			require.Equal(t, before, e.snapshot(), "%s changed the database", tc.name)
		}
	})
}

func (e *env) doContentType(method, path, ct, body string) response {
	e.t.Helper()
	r := e.rawRequest(method, path, body)
	r.Header.Set("Content-Type", ct)
	r.Header.Set("Authorization", "Bearer "+e.token)
	return e.serve(r)
}
