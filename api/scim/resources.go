package scim

import (
	"strings"
	"time"

	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/store"
)

// ---- rendering ----

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (h *Handler) userResource(base string, d service.DirectoryUser) map[string]any {
	schemas := []string{schemaUser}
	r := map[string]any{"id": d.ID, "userName": d.UserName, "active": d.Active,
		"meta": map[string]any{"resourceType": "User", "created": stamp(d.CreatedAt), "lastModified": stamp(d.UpdatedAt),
			"location": base + "/Users/" + d.ID}}
	if d.ExternalID != "" {
		r["externalId"] = d.ExternalID
	}
	if d.DisplayName != "" {
		r["displayName"] = d.DisplayName
	}
	if d.GivenName != "" || d.FamilyName != "" {
		name := map[string]any{"formatted": strings.TrimSpace(d.GivenName + " " + d.FamilyName)}
		if d.GivenName != "" {
			name["givenName"] = d.GivenName
		}
		if d.FamilyName != "" {
			name["familyName"] = d.FamilyName
		}
		r["name"] = name
	}
	if len(d.Emails) > 0 {
		emails := make([]map[string]any, 0, len(d.Emails))
		for _, e := range d.Emails {
			m := map[string]any{"value": e.Value, "primary": e.Primary}
			if e.Type != "" {
				m["type"] = e.Type
			}
			emails = append(emails, m)
		}
		r["emails"] = emails
	}
	groups := make([]map[string]any, 0, len(d.Groups))
	for _, g := range d.Groups {
		groups = append(groups, map[string]any{"value": g.ID, "display": g.Display, "$ref": base + "/Groups/" + g.ID, "type": "direct"})
	}
	r["groups"] = groups
	if d.EmployeeNumber != "" || d.Department != "" {
		ext := map[string]any{}
		if d.EmployeeNumber != "" {
			ext["employeeNumber"] = d.EmployeeNumber
		}
		if d.Department != "" {
			ext["department"] = d.Department
		}
		r[schemaEnterprise] = ext
		schemas = append(schemas, schemaEnterprise)
	}
	r["schemas"] = schemas
	return r
}

func (h *Handler) groupResource(base string, g service.DirectoryGroup) map[string]any {
	r := map[string]any{"schemas": []string{schemaGroup}, "id": g.ID, "displayName": g.DisplayName,
		"meta": map[string]any{"resourceType": "Group", "created": stamp(g.CreatedAt), "lastModified": stamp(g.UpdatedAt),
			"location": base + "/Groups/" + g.ID}}
	if g.ExternalID != "" {
		r["externalId"] = g.ExternalID
	}
	if !g.MembersOmitted {
		members := make([]map[string]any, 0, len(g.Members))
		for _, m := range g.Members {
			members = append(members, map[string]any{"value": m.ID, "display": m.Display, "$ref": base + "/Users/" + m.ID, "type": "User"})
		}
		r["members"] = members
	}
	return r
}

// ---- parsing (POST and PUT bodies) ----

// parseUser reads a User resource. Read-only attributes (id, groups,
// meta) and attributes Keygate does not keep (phoneNumbers, title, ...)
// are ignored, as RFC 7644 asks of read-only ones; a known attribute of
// the wrong type is invalidValue. hasActive reports whether "active" was
// sent (PUT keeps the current status when it was not).
func parseUser(raw map[string]any) (d service.DirectoryUser, hasActive bool, err error) {
	body := fold(raw)
	if err := checkSchemas(body, schemaUser, schemaGroup); err != nil {
		return d, false, err
	}
	d.Active = true
	if d.UserName, err = body.str("userName"); err != nil {
		return d, false, err
	}
	if d.ExternalID, err = body.str("externalId"); err != nil {
		return d, false, err
	}
	if d.DisplayName, err = body.str("displayName"); err != nil {
		return d, false, err
	}
	if v, ok := body.get("name"); ok && v != nil {
		name, err := asObject("name", v)
		if err != nil {
			return d, false, err
		}
		if d.GivenName, err = name.str("givenName"); err != nil {
			return d, false, err
		}
		if d.FamilyName, err = name.str("familyName"); err != nil {
			return d, false, err
		}
	}
	if v, ok := body.get("emails"); ok {
		if d.Emails, err = parseEmails(v); err != nil {
			return d, false, err
		}
	}
	if v, ok := body.get("active"); ok && v != nil {
		if d.Active, err = asBool("active", v); err != nil {
			return d, false, err
		}
		hasActive = true
	}
	if v, ok := body.get(schemaEnterprise); ok && v != nil {
		ext, err := asObject(schemaEnterprise, v)
		if err != nil {
			return d, false, err
		}
		if d.EmployeeNumber, err = ext.str("employeeNumber"); err != nil {
			return d, false, err
		}
		if d.Department, err = ext.str("department"); err != nil {
			return d, false, err
		}
	}
	return d, hasActive, nil
}

func parseEmails(v any) ([]store.DirectoryEmail, error) {
	list, err := asObjects("emails", v)
	if err != nil {
		return nil, err
	}
	out := make([]store.DirectoryEmail, 0, len(list))
	for _, e := range list {
		var x store.DirectoryEmail
		if x.Value, err = e.str("value"); err != nil {
			return nil, err
		}
		if x.Type, err = e.str("type"); err != nil {
			return nil, err
		}
		if p, ok := e.get("primary"); ok && p != nil {
			if x.Primary, err = asBool("emails.primary", p); err != nil {
				return nil, err
			}
		}
		if x.Value != "" {
			out = addEmail(out, x)
		}
	}
	return out, nil
}

// addEmail adds e, replacing an entry with the same address (compared
// case-insensitively); a new primary demotes the old one.
func addEmail(list []store.DirectoryEmail, e store.DirectoryEmail) []store.DirectoryEmail {
	if e.Primary {
		for i := range list {
			list[i].Primary = false
		}
	}
	for i := range list {
		if strings.EqualFold(list[i].Value, e.Value) {
			list[i] = e
			return list
		}
	}
	return append(list, e)
}

// parseGroup reads a Group resource.
func parseGroup(raw map[string]any) (g service.DirectoryGroup, err error) {
	body := fold(raw)
	if err := checkSchemas(body, schemaGroup, schemaUser); err != nil {
		return g, err
	}
	if g.DisplayName, err = body.str("displayName"); err != nil {
		return g, err
	}
	if g.ExternalID, err = body.str("externalId"); err != nil {
		return g, err
	}
	if v, ok := body.get("members"); ok {
		if g.Members, err = parseMembers(v); err != nil {
			return g, err
		}
	}
	return g, nil
}

func parseMembers(v any) ([]service.DirectoryRef, error) {
	list, err := asObjects("members", v)
	if err != nil {
		return nil, err
	}
	out := make([]service.DirectoryRef, 0, len(list))
	for _, m := range list {
		id, err := m.str("value")
		if err != nil {
			return nil, err
		}
		if id == "" {
			return nil, bad(typeInvalidValue, "Every member needs a value: the SCIM id of a user.")
		}
		out = append(out, service.DirectoryRef{ID: id})
	}
	return out, nil
}

// ---- attributes / excludedAttributes (RFC 7644 section 3.9) ----

// projection is a parsed attributes or excludedAttributes list: each
// entry is a top-level key and an optional sub-attribute, lower-case.
type projection struct {
	include, exclude [][2]string
}

func parseProjection(attributes, excluded, coreSchema string) projection {
	split := func(s string) [][2]string {
		var out [][2]string
		for _, a := range strings.Split(s, ",") {
			a = strings.ToLower(strings.TrimSpace(a))
			if a == "" {
				continue
			}
			top, sub := a, ""
			switch {
			case strings.HasPrefix(a, strings.ToLower(schemaEnterprise)+":"):
				top, sub = strings.ToLower(schemaEnterprise), strings.TrimPrefix(a, strings.ToLower(schemaEnterprise)+":")
			case strings.HasPrefix(a, strings.ToLower(coreSchema)+":"):
				top = strings.TrimPrefix(a, strings.ToLower(coreSchema)+":")
			}
			if sub == "" {
				if i := strings.IndexByte(top, '.'); i > 0 && !strings.HasPrefix(top, "urn:") {
					top, sub = top[:i], top[i+1:]
				}
			}
			out = append(out, [2]string{top, sub})
		}
		return out
	}
	return projection{include: split(attributes), exclude: split(excluded)}
}

// wants reports whether the answer needs the top-level attribute name at
// all (so the service can skip loading groups or members).
func (p projection) wants(name string) bool {
	name = strings.ToLower(name)
	for _, e := range p.exclude {
		if e[0] == name && e[1] == "" {
			return false
		}
	}
	if len(p.include) == 0 {
		return true
	}
	for _, e := range p.include {
		if e[0] == name {
			return true
		}
	}
	return false
}

// apply trims a resource; "schemas" and "id" are always returned.
func (p projection) apply(r map[string]any) map[string]any {
	if len(p.include) == 0 && len(p.exclude) == 0 {
		return r
	}
	key := func(lower string) (string, bool) {
		for k := range r {
			if strings.ToLower(k) == lower {
				return k, true
			}
		}
		return "", false
	}
	if len(p.include) > 0 {
		out := map[string]any{"schemas": r["schemas"], "id": r["id"]}
		for _, e := range p.include {
			k, ok := key(e[0])
			if !ok {
				continue
			}
			if e[1] == "" {
				out[k] = r[k]
				continue
			}
			if sub, ok := r[k].(map[string]any); ok {
				dst, _ := out[k].(map[string]any)
				if dst == nil {
					dst = map[string]any{}
				}
				for sk, sv := range sub {
					if strings.ToLower(sk) == e[1] {
						dst[sk] = sv
					}
				}
				out[k] = dst
			}
		}
		r = out
	}
	for _, e := range p.exclude {
		k, ok := key(e[0])
		if !ok || k == "schemas" || k == "id" {
			continue
		}
		if e[1] == "" {
			delete(r, k)
			continue
		}
		if sub, ok := r[k].(map[string]any); ok {
			for sk := range sub {
				if strings.ToLower(sk) == e[1] {
					delete(sub, sk)
				}
			}
		}
	}
	return r
}
