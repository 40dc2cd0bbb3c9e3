package scim_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// Each test below is one thing a real identity provider sends, as its
// published SCIM documentation describes it.

func (e *env) create(userName string, extra map[string]any) string {
	e.t.Helper()
	return e.ok(e.scim(http.MethodPost, "/Users", user(userName, extra)), http.StatusCreated)["id"].(string)
}

// Okta asks `filter=userName eq "..."` before creating; an unknown user is
// an empty list (200), a known one is found case-insensitively.
func TestOktaLooksUpUserNameBeforeCreate(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		q := "/Users?" + filterQ(`userName eq "grace@example.com"`) + "&startIndex=1&count=100"
		empty := e.ok(e.scim(http.MethodGet, q, nil), http.StatusOK)
		require.EqualValues(t, 0, empty["totalResults"])
		require.Equal(t, []any{}, empty["Resources"])
		require.Equal(t, []any{"urn:ietf:params:scim:api:messages:2.0:ListResponse"}, empty["schemas"])
		id := e.create("Grace@Example.com", nil)
		found := e.ok(e.scim(http.MethodGet, q, nil), http.StatusOK)
		require.EqualValues(t, 1, found["totalResults"])
		require.Equal(t, id, found["Resources"].([]any)[0].(map[string]any)["id"])
	})
}

// Okta expects 409 for a userName that exists, in any case.
func TestOktaDuplicateUserNameIs409(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		e.create("dup@example.com", nil)
		before := e.snapshot()
		requireSCIMError(t, e.scim(http.MethodPost, "/Users", user("DUP@example.com", nil)), http.StatusConflict, "uniqueness")
		require.Equal(t, before, e.snapshot())
		// Renaming onto an existing userName is a 409 too.
		other := e.create("other@example.com", nil)
		before = e.snapshot()
		requireSCIMError(t, e.scim(http.MethodPut, "/Users/"+other, user("Dup@Example.com", nil)), http.StatusConflict, "uniqueness")
		require.Equal(t, before, e.snapshot())
	})
}

// Okta updates profiles with PUT of the whole user.
func TestOktaUpdatesWithPut(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		id := e.create("put@example.com", map[string]any{"name": map[string]any{"givenName": "Old", "familyName": "Name"}})
		r := e.ok(e.scim(http.MethodPut, "/Users/"+id, user("put@example.com", map[string]any{"id": id,
			"name": map[string]any{"givenName": "New", "familyName": "Name"}, "emails": []any{map[string]any{"value": "put@example.com",
				"primary": true, "type": "work"}}, "groups": []any{}, "meta": map[string]any{"resourceType": "User"}})), http.StatusOK)
		require.Equal(t, "New", r["name"].(map[string]any)["givenName"])
		require.Equal(t, true, r["active"])
	})
}

// Okta deactivates with a path-less PATCH and never DELETEs users.
func TestOktaDeactivatesWithPathlessPatch(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		id := e.create("okta-leaver@example.com", nil)
		key := e.userKey(id)
		require.Equal(t, http.StatusOK, e.verify(key))
		r := e.ok(e.scim(http.MethodPatch, "/Users/"+id, patch(map[string]any{"op": "replace", "value": map[string]any{"active": false}})), http.StatusOK)
		require.Equal(t, false, r["active"])
		require.Equal(t, http.StatusUnauthorized, e.verify(key))
		// Okta also deactivates with PUT active false.
		e.ok(e.scim(http.MethodPut, "/Users/"+id, user("okta-leaver@example.com", map[string]any{"active": true})), http.StatusOK)
		require.Equal(t, http.StatusOK, e.verify(key))
		e.ok(e.scim(http.MethodPut, "/Users/"+id, user("okta-leaver@example.com", map[string]any{"active": false})), http.StatusOK)
		require.Equal(t, http.StatusUnauthorized, e.verify(key))
	})
}

// Okta's Push Groups renames with {"op":"replace","value":{"id","displayName"}}
// and removes members with members[value eq "..."].
func TestOktaGroupPush(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		a, b := e.create("a@example.com", nil), e.create("b@example.com", nil)
		q := "/Groups?" + filterQ(`displayName eq "Engineering"`)
		require.EqualValues(t, 0, e.ok(e.scim(http.MethodGet, q, nil), http.StatusOK)["totalResults"])
		g := e.ok(e.scim(http.MethodPost, "/Groups", group("Engineering", a)), http.StatusCreated)
		gid := g["id"].(string)
		require.EqualValues(t, 1, e.ok(e.scim(http.MethodGet, "/Groups?"+filterQ(`displayName eq "engineering"`), nil), http.StatusOK)["totalResults"])
		r := e.ok(e.scim(http.MethodPatch, "/Groups/"+gid, patch(
			map[string]any{"op": "replace", "value": map[string]any{"id": gid, "displayName": "Eng"}},
			map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": b, "display": "b@example.com"}}},
			map[string]any{"op": "remove", "path": `members[value eq "` + a + `"]`})), http.StatusOK)
		require.Equal(t, "Eng", r["displayName"])
		members := r["members"].([]any)
		require.Len(t, members, 1)
		require.Equal(t, b, members[0].(map[string]any)["value"])
		require.Equal(t, "b@example.com", members[0].(map[string]any)["display"])
		// Okta's older connector replaces the group with PUT.
		r = e.ok(e.scim(http.MethodPut, "/Groups/"+gid, group("Eng", a, b)), http.StatusOK)
		require.Len(t, r["members"], 2)
		// A second group with the same name (any case) is a 409.
		before := e.snapshot()
		requireSCIMError(t, e.scim(http.MethodPost, "/Groups", group("ENG")), http.StatusConflict, "uniqueness")
		require.Equal(t, before, e.snapshot())
	})
}

// Entra's connection test asks for a random userName and expects an empty
// list, not a 404.
func TestEntraProbeFilterReturnsEmptyList(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		r := e.ok(e.scim(http.MethodGet, "/Users?"+filterQ(`userName eq "8c3a3f0e-2f2d-4cbb-9a77-4f1b2f6c5d1e"`), nil), http.StatusOK)
		require.EqualValues(t, 0, r["totalResults"])
		require.Equal(t, []any{}, r["Resources"])
		// It may also ask with count=0 (the total only).
		e.create("counted@example.com", nil)
		r = e.ok(e.scim(http.MethodGet, "/Users?count=0", nil), http.StatusOK)
		require.EqualValues(t, 1, r["totalResults"])
		require.EqualValues(t, 0, r["itemsPerPage"])
	})
}

// Entra capitalises op ("Replace", "Add") and sends booleans as strings.
func TestEntraCapitalisedOpsAndStringBooleans(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		id := e.create("entra@example.com", nil)
		key := e.userKey(id)
		r := e.ok(e.scim(http.MethodPatch, "/Users/"+id, patch(
			map[string]any{"op": "Replace", "path": "active", "value": "False"},
			map[string]any{"op": "Add", "path": "displayName", "value": "Entra User"})), http.StatusOK)
		require.Equal(t, false, r["active"])
		require.Equal(t, "Entra User", r["displayName"])
		require.Equal(t, http.StatusUnauthorized, e.verify(key))
		r = e.ok(e.scim(http.MethodPatch, "/Users/"+id, patch(map[string]any{"op": "Replace", "path": "active", "value": "True"})), http.StatusOK)
		require.Equal(t, true, r["active"])
		require.Equal(t, http.StatusOK, e.verify(key))
		// A string that is no boolean is refused, nothing changed.
		before := e.snapshot()
		requireSCIMError(t, e.scim(http.MethodPatch, "/Users/"+id, patch(map[string]any{"op": "Replace", "path": "active", "value": "Nope"})),
			http.StatusBadRequest, "invalidValue")
		require.Equal(t, before, e.snapshot())
	})
}

// Entra addresses the work address as emails[type eq "work"].value and
// names as name.givenName.
func TestEntraValuePathsForEmailsAndNames(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		id := e.create("upn@contoso.example", nil)
		r := e.ok(e.scim(http.MethodPatch, "/Users/"+id, patch(
			map[string]any{"op": "Add", "path": `emails[type eq "work"].value`, "value": "ada@contoso.example"},
			map[string]any{"op": "Replace", "path": "name.givenName", "value": "Ada"},
			map[string]any{"op": "Replace", "path": "name.familyName", "value": "Lovelace"},
			map[string]any{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "42"},
			map[string]any{"op": "Replace", "path": "title", "value": "Engineer"},
			map[string]any{"op": "Add", "path": `phoneNumbers[type eq "work"].value`, "value": "+1 555 0100"})), http.StatusOK)
		emails := r["emails"].([]any)
		require.Len(t, emails, 1, "the work address Entra added (userName is the UPN, not listed)")
		var work map[string]any
		for _, em := range emails {
			if em.(map[string]any)["type"] == "work" && em.(map[string]any)["value"] == "ada@contoso.example" {
				work = em.(map[string]any)
			}
		}
		require.NotNil(t, work, "%v", emails)
		require.Equal(t, "Ada", r["name"].(map[string]any)["givenName"])
		require.Equal(t, "42", r["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)["employeeNumber"])
		// Replacing the work address changes it in place.
		r = e.ok(e.scim(http.MethodPatch, "/Users/"+id, patch(map[string]any{"op": "Replace", "path": `emails[type eq "work"].value`,
			"value": "ada.l@contoso.example"})), http.StatusOK)
		found := false
		for _, em := range r["emails"].([]any) {
			found = found || em.(map[string]any)["value"] == "ada.l@contoso.example"
			require.NotEqual(t, "ada@contoso.example", em.(map[string]any)["value"])
		}
		require.True(t, found)
		// The address is searchable as Entra matches it.
		for _, f := range []string{`emails[type eq "work"].value eq "ADA.L@contoso.example"`, `emails[type eq "work" and value eq "ada.l@contoso.example"]`,
			`emails.value eq "ada.l@contoso.example"`, `emails co "ada.l@"`} {
			l := e.ok(e.scim(http.MethodGet, "/Users?"+filterQ(f), nil), http.StatusOK)
			require.EqualValues(t, 1, l["totalResults"], f)
		}
	})
}

// Entra matches users by externalId too.
func TestEntraFiltersByExternalID(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		id := e.create("ext@example.com", map[string]any{"externalId": "ada.lovelace"})
		l := e.ok(e.scim(http.MethodGet, "/Users?"+filterQ(`externalId eq "ada.lovelace"`), nil), http.StatusOK)
		require.EqualValues(t, 1, l["totalResults"])
		require.Equal(t, id, l["Resources"].([]any)[0].(map[string]any)["id"])
		l = e.ok(e.scim(http.MethodGet, "/Users?"+filterQ(`externalId eq "ADA.LOVELACE"`), nil), http.StatusOK)
		require.EqualValues(t, 0, l["totalResults"], "externalId is case-exact")
	})
}

// Entra adds and removes members through path "members" with a value
// list — including "Remove" with a value, which RFC 7644 does not define.
func TestEntraMembersThroughPathWithValues(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		a, b, c := e.create("ma@example.com", nil), e.create("mb@example.com", nil), e.create("mc@example.com", nil)
		gid := e.ok(e.scim(http.MethodPost, "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
			"displayName": "aad group", "externalId": "aad-obj-auditors"}), http.StatusCreated)["id"].(string)
		r := e.ok(e.scim(http.MethodPatch, "/Groups/"+gid+"?excludedAttributes=members", patch(map[string]any{"op": "Add", "path": "members",
			"value": []any{map[string]any{"value": a}, map[string]any{"value": b}, map[string]any{"value": c}}})), http.StatusOK)
		require.NotContains(t, r, "members")
		u, _ := e.store.GetUser(t.Context(), a)
		require.Equal(t, "proxy_admin_viewer", u.Role, "mapped by the group's externalId")
		e.ok(e.scim(http.MethodPatch, "/Groups/"+gid, patch(map[string]any{"op": "Remove", "path": "members",
			"value": []any{map[string]any{"value": a}, map[string]any{"value": c}}})), http.StatusOK)
		g := e.ok(e.scim(http.MethodGet, "/Groups/"+gid, nil), http.StatusOK)
		require.Len(t, g["members"], 1)
		require.Equal(t, b, g["members"].([]any)[0].(map[string]any)["value"])
		u, _ = e.store.GetUser(t.Context(), a)
		require.Equal(t, "internal_user_viewer", u.Role, "no mapped group left: the default directory role")
		// Membership filters, as Entra checks them.
		l := e.ok(e.scim(http.MethodGet, "/Groups?"+filterQ(`id eq "`+gid+`" and members eq "`+b+`"`)+"&excludedAttributes=members", nil), http.StatusOK)
		require.EqualValues(t, 1, l["totalResults"])
		require.NotContains(t, l["Resources"].([]any)[0], "members")
		l = e.ok(e.scim(http.MethodGet, "/Groups?"+filterQ(`id eq "`+gid+`" and members eq "`+a+`"`), nil), http.StatusOK)
		require.EqualValues(t, 0, l["totalResults"])
		// A member that is not a user is refused, nothing changed.
		before := e.snapshot()
		requireSCIMError(t, e.scim(http.MethodPatch, "/Groups/"+gid, patch(map[string]any{"op": "Add", "path": "members",
			"value": []any{map[string]any{"value": a}, map[string]any{"value": "no-such-user"}}})), http.StatusBadRequest, "invalidValue")
		require.Equal(t, before, e.snapshot())
	})
}

// Entra reads a group without its (possibly huge) member list.
func TestEntraGetGroupExcludingMembers(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		a := e.create("x@example.com", nil)
		gid := e.ok(e.scim(http.MethodPost, "/Groups", group("big", a)), http.StatusCreated)["id"].(string)
		g := e.ok(e.scim(http.MethodGet, "/Groups/"+gid+"?excludedAttributes=members", nil), http.StatusOK)
		require.NotContains(t, g, "members")
		require.Equal(t, "big", g["displayName"])
		g = e.ok(e.scim(http.MethodGet, "/Groups/"+gid+"?attributes=displayName", nil), http.StatusOK)
		require.Equal(t, []string{"displayName", "id", "schemas"}, keys(g))
		u := e.ok(e.scim(http.MethodGet, "/Users/"+a+"?attributes=userName,name.givenName", nil), http.StatusOK)
		require.Equal(t, []string{"id", "schemas", "userName"}, keys(u))
	})
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}
