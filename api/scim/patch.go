package scim

import (
	"strings"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/store"
)

// PATCH (RFC 7644 section 3.5.2) as identity providers send it: Okta
// sends {"op":"replace","value":{"active":false}} without a path; Microsoft
// Entra ID capitalises ops ("Replace", "Add"), addresses values with paths
// such as emails[type eq "work"].value and name.givenName, sends booleans
// as "True"/"False", and removes group members with
// {"op":"Remove","path":"members","value":[{"value":"<id>"}]}. Operations
// are applied in order to the directory's view of the resource inside the
// service's transaction: one failing operation leaves nothing changed.

const maxPatchOps = 1000

type patchOp struct {
	op       string // add, replace or remove
	path     string
	value    any
	hasValue bool
}

func parsePatch(raw map[string]any) ([]patchOp, error) {
	body := fold(raw)
	if err := checkSchemas(body, msgPatch, schemaUser); err != nil {
		return nil, err
	}
	v, ok := body.get("Operations")
	list, isList := v.([]any)
	if !ok || !isList || len(list) == 0 {
		return nil, bad(typeInvalidSyntax, "Operations must be a non-empty list.")
	}
	if len(list) > maxPatchOps {
		return nil, bad(typeInvalidSyntax, "At most %d operations per request.", maxPatchOps)
	}
	ops := make([]patchOp, 0, len(list))
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, bad(typeInvalidSyntax, "Every operation must be an object.")
		}
		a := fold(m)
		op, err := a.str("op")
		if err != nil {
			return nil, bad(typeInvalidSyntax, "op must be add, replace or remove.")
		}
		op = strings.ToLower(strings.TrimSpace(op))
		if op != "add" && op != "replace" && op != "remove" {
			return nil, bad(typeInvalidSyntax, "op must be add, replace or remove, not %q.", truncate(op))
		}
		path, err := a.str("path")
		if err != nil {
			return nil, bad(typeInvalidPath, "path must be a string.")
		}
		val, has := a.get("value")
		if op != "remove" && (!has || val == nil) && path == "" {
			return nil, bad(typeInvalidSyntax, "An %s operation without a path needs an object value.", op)
		}
		ops = append(ops, patchOp{op: op, path: strings.TrimSpace(path), value: val, hasValue: has && val != nil})
	}
	return ops, nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// target is a parsed PATCH path: attribute (lower-case, with "ent:" for
// the enterprise extension), optional sub-attribute, optional value filter.
type target struct {
	attr   string
	sub    string
	filter filter.Expression
	raw    string
}

// parseTarget parses a path; coreSchema may prefix core attributes and the
// enterprise URN prefixes its own.
func parseTarget(path, coreSchema string) (target, error) {
	lower := strings.ToLower(path)
	ent := strings.ToLower(schemaEnterprise)
	if lower == ent {
		return target{attr: "ent:", raw: path}, nil
	}
	p, err := filter.ParsePath([]byte(path))
	if err != nil {
		return target{}, bad(typeInvalidPath, "path %q is not a valid SCIM attribute path.", truncate(path))
	}
	if p.ValueExpression != nil && !checkFilterText(p.ValueExpression) {
		return target{}, bad(typeInvalidPath, "path %q compares with text holding a NUL character.", truncate(path))
	}
	t := target{attr: strings.ToLower(p.AttributePath.AttributeName), filter: p.ValueExpression, raw: path}
	t.sub = strings.ToLower(p.AttributePath.SubAttributeName())
	if s := p.SubAttributeName(); s != "" {
		t.sub = strings.ToLower(s)
	}
	switch uri := strings.ToLower(p.AttributePath.URI()); uri {
	case "", strings.ToLower(coreSchema):
	case ent:
		t.attr = "ent:" + t.attr
	default:
		return target{}, bad(typeInvalidPath, "Unknown schema in path %q.", truncate(path))
	}
	return t, nil
}

// pathless expands an operation without a path: each key of its object
// value is a path (a sub-object of a complex attribute sets only the
// sub-attributes it names).
func pathless(op patchOp) ([]patchOp, error) {
	obj, ok := op.value.(map[string]any)
	if !ok {
		return nil, bad(typeInvalidValue, "An %s operation without a path needs an object value.", op.op)
	}
	if op.op == "remove" {
		return nil, bad(typeNoTarget, "A remove operation needs a path.")
	}
	out := make([]patchOp, 0, len(obj))
	for k, v := range obj {
		if sub, isObj := v.(map[string]any); isObj && !strings.EqualFold(k, schemaEnterprise) {
			for sk, sv := range sub {
				out = append(out, patchOp{op: op.op, path: k + "." + sk, value: sv, hasValue: sv != nil})
			}
			continue
		}
		if strings.EqualFold(k, schemaEnterprise) {
			ext, ok := v.(map[string]any)
			if !ok {
				return nil, bad(typeInvalidValue, "%s must be an object.", schemaEnterprise)
			}
			for sk, sv := range ext {
				out = append(out, patchOp{op: op.op, path: schemaEnterprise + ":" + sk, value: sv, hasValue: sv != nil})
			}
			continue
		}
		out = append(out, patchOp{op: op.op, path: k, value: v, hasValue: v != nil})
	}
	return out, nil
}

// Core User attributes Keygate accepts and does not keep: changing them
// is not an error (IdPs send them by default), but they are not stored.
var ignoredUserAttrs = map[string]bool{"title": true, "nickname": true, "profileurl": true, "usertype": true,
	"preferredlanguage": true, "locale": true, "timezone": true, "phonenumbers": true, "addresses": true, "ims": true,
	"photos": true, "entitlements": true, "roles": true, "x509certificates": true, "password": true,
	"ent:costcenter": true, "ent:organization": true, "ent:division": true, "ent:manager": true}

// applyUserPatch applies ops to d.
func applyUserPatch(d *service.DirectoryUser, ops []patchOp) error {
	for _, op := range ops {
		if op.path == "" {
			expanded, err := pathless(op)
			if err != nil {
				return err
			}
			if err := applyUserPatch(d, expanded); err != nil {
				return err
			}
			continue
		}
		t, err := parseTarget(op.path, schemaUser)
		if err != nil {
			return err
		}
		if t.attr == "ent:" { // the whole extension object
			ext, err := asObject(schemaEnterprise, op.value)
			if op.op == "remove" {
				d.EmployeeNumber, d.Department = "", ""
				continue
			}
			if err != nil {
				return err
			}
			var sub []patchOp
			for k, v := range ext {
				sub = append(sub, patchOp{op: op.op, path: schemaEnterprise + ":" + k, value: v, hasValue: v != nil})
			}
			if err := applyUserPatch(d, sub); err != nil {
				return err
			}
			continue
		}
		if err := applyUserTarget(d, op, t); err != nil {
			return err
		}
	}
	return nil
}

func applyUserTarget(d *service.DirectoryUser, op patchOp, t target) error {
	if ignoredUserAttrs[t.attr] {
		return nil
	}
	if t.filter != nil && t.attr != "emails" {
		return bad(typeInvalidPath, "Value filters are supported on emails only, not in %q.", truncate(t.raw))
	}
	text := func(dst *string) error {
		if t.sub != "" {
			return bad(typeInvalidPath, "%q has no sub-attributes.", truncate(t.raw))
		}
		if op.op == "remove" {
			*dst = ""
			return nil
		}
		v, err := asString(t.raw, op.value)
		if err != nil {
			return err
		}
		*dst = v
		return nil
	}
	switch t.attr {
	case "username":
		return text(&d.UserName)
	case "externalid":
		return text(&d.ExternalID)
	case "displayname":
		return text(&d.DisplayName)
	case "ent:employeenumber":
		return text(&d.EmployeeNumber)
	case "ent:department":
		return text(&d.Department)
	case "active":
		if op.op == "remove" || t.sub != "" {
			return bad(typeInvalidValue, "active can be replaced, not removed.")
		}
		b, err := asBool("active", op.value)
		if err != nil {
			return err
		}
		d.Active = b
		return nil
	case "name":
		return applyName(d, op, t)
	case "emails":
		return applyEmails(d, op, t)
	case "id", "meta", "groups", "schemas":
		if t.attr == "id" && op.op != "remove" {
			if v, ok := op.value.(string); ok && v == d.ID {
				return nil // Okta repeats the id in a path-less replace
			}
		}
		return bad(typeMutability, "%s is read-only.", t.attr)
	}
	return bad(typeInvalidPath, "Unknown attribute %q.", truncate(t.raw))
}

func applyName(d *service.DirectoryUser, op patchOp, t target) error {
	if t.sub == "" {
		if op.op == "remove" {
			d.GivenName, d.FamilyName = "", ""
			return nil
		}
		name, err := asObject("name", op.value)
		if err != nil {
			return err
		}
		if v, ok := name.get("givenName"); ok {
			if d.GivenName, err = asString("name.givenName", v); err != nil {
				return err
			}
		}
		if v, ok := name.get("familyName"); ok {
			if d.FamilyName, err = asString("name.familyName", v); err != nil {
				return err
			}
		}
		return nil
	}
	var dst *string
	switch t.sub {
	case "givenname":
		dst = &d.GivenName
	case "familyname":
		dst = &d.FamilyName
	case "formatted", "middlename", "honorificprefix", "honorificsuffix":
		return nil // accepted, not kept: formatted is derived from the two kept names
	default:
		return bad(typeInvalidPath, "Unknown attribute %q.", truncate(t.raw))
	}
	if op.op == "remove" {
		*dst = ""
		return nil
	}
	v, err := asString(t.raw, op.value)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// applyEmails handles emails, emails.value and emails[filter](.sub).
func applyEmails(d *service.DirectoryUser, op patchOp, t target) error {
	switch t.sub {
	case "", "value", "type", "primary":
	default:
		return bad(typeInvalidPath, "Unknown attribute %q.", truncate(t.raw))
	}
	if t.filter == nil && t.sub == "" {
		switch op.op {
		case "remove":
			if !op.hasValue {
				d.Emails = nil
				return nil
			}
			drop, err := parseEmails(op.value)
			if err != nil {
				return err
			}
			d.Emails = removeEmails(d.Emails, func(e store.DirectoryEmail) bool {
				for _, x := range drop {
					if strings.EqualFold(x.Value, e.Value) {
						return true
					}
				}
				return false
			})
			return nil
		case "replace":
			d.Emails = nil
		}
		add, err := parseEmails(op.value)
		if err != nil {
			return err
		}
		for _, e := range add {
			d.Emails = addEmail(d.Emails, e)
		}
		return nil
	}
	// A sub-attribute without a filter addresses the primary (or only)
	// address.
	match := func(i int, e store.DirectoryEmail) (bool, error) {
		if t.filter == nil {
			return e.Primary || (i == 0 && !anyPrimary(d.Emails)), nil
		}
		return evalEmail(t.filter, e)
	}
	var hits []int
	for i, e := range d.Emails {
		ok, err := match(i, e)
		if err != nil {
			return err
		}
		if ok {
			hits = append(hits, i)
		}
	}
	if op.op == "remove" {
		if t.sub == "" || t.sub == "value" {
			keep := d.Emails[:0:0]
			for i, e := range d.Emails {
				if !contains(hits, i) {
					keep = append(keep, e)
				}
			}
			d.Emails = keep
			return nil
		}
		for _, i := range hits {
			switch t.sub {
			case "type":
				d.Emails[i].Type = ""
			case "primary":
				d.Emails[i].Primary = false
			}
		}
		return nil
	}
	if t.sub == "" {
		return bad(typeInvalidPath, "Name a sub-attribute (value, type, primary) after emails[...].")
	}
	if len(hits) == 0 {
		// Entra adds a work address with Add emails[type eq "work"].value;
		// create the entry its filter describes.
		typ, ok := simpleType(t.filter)
		if t.filter != nil && !ok {
			return bad(typeNoTarget, "No e-mail address matches %q.", truncate(t.raw))
		}
		d.Emails = append(d.Emails, store.DirectoryEmail{Type: typ, Primary: !anyPrimary(d.Emails)})
		hits = []int{len(d.Emails) - 1}
	}
	for _, i := range hits {
		switch t.sub {
		case "value":
			v, err := asString(t.raw, op.value)
			if err != nil {
				return err
			}
			d.Emails[i].Value = v
		case "type":
			v, err := asString(t.raw, op.value)
			if err != nil {
				return err
			}
			d.Emails[i].Type = v
		case "primary":
			b, err := asBool(t.raw, op.value)
			if err != nil {
				return err
			}
			if b {
				for j := range d.Emails {
					d.Emails[j].Primary = false
				}
			}
			d.Emails[i].Primary = b
		}
	}
	return nil
}

func anyPrimary(list []store.DirectoryEmail) bool {
	for _, e := range list {
		if e.Primary {
			return true
		}
	}
	return false
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func removeEmails(list []store.DirectoryEmail, drop func(store.DirectoryEmail) bool) []store.DirectoryEmail {
	out := list[:0:0]
	for _, e := range list {
		if !drop(e) {
			out = append(out, e)
		}
	}
	return out
}

// simpleType recognises the filter `type eq "work"`.
func simpleType(e filter.Expression) (string, bool) {
	x, ok := e.(*filter.AttributeExpression)
	if !ok || !strings.EqualFold(x.AttributePath.AttributeName, "type") || !strings.EqualFold(string(x.Operator), "eq") {
		return "", false
	}
	s, ok := x.CompareValue.(string)
	return unescape(s), ok
}

// evalEmail evaluates a value filter on one address: value and type
// compare case-insensitively, primary is a boolean.
func evalEmail(e filter.Expression, em store.DirectoryEmail) (bool, error) {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		l, err := evalEmail(x.Left, em)
		if err != nil {
			return false, err
		}
		r, err := evalEmail(x.Right, em)
		if err != nil {
			return false, err
		}
		if strings.EqualFold(string(x.Operator), "or") {
			return l || r, nil
		}
		return l && r, nil
	case *filter.NotExpression:
		v, err := evalEmail(x.Expression, em)
		return !v, err
	case *filter.AttributeExpression:
		op := strings.ToLower(string(x.Operator))
		switch strings.ToLower(x.AttributePath.AttributeName) {
		case "value":
			return compareText(op, em.Value, x.CompareValue)
		case "type":
			return compareText(op, em.Type, x.CompareValue)
		case "primary":
			if op == "pr" {
				return true, nil
			}
			b, err := asBool("primary", x.CompareValue)
			if err != nil || (op != "eq" && op != "ne") {
				return false, bad(typeInvalidPath, "primary compares with true or false.")
			}
			return (em.Primary == b) == (op == "eq"), nil
		}
	}
	return false, bad(typeInvalidPath, "Unsupported filter on emails.")
}

func compareText(op, have string, want any) (bool, error) {
	if op == "pr" {
		return have != "", nil
	}
	s, ok := want.(string)
	if !ok {
		return false, bad(typeInvalidPath, "Compare %s with a string.", op)
	}
	a, b := strings.ToLower(have), strings.ToLower(unescape(s))
	switch op {
	case "eq":
		return a == b, nil
	case "ne":
		return a != b, nil
	case "co":
		return strings.Contains(a, b), nil
	case "sw":
		return strings.HasPrefix(a, b), nil
	case "ew":
		return strings.HasSuffix(a, b), nil
	case "gt":
		return a > b, nil
	case "ge":
		return a >= b, nil
	case "lt":
		return a < b, nil
	case "le":
		return a <= b, nil
	}
	return false, bad(typeInvalidPath, "Unknown operator %q.", op)
}

// applyGroupPatch applies ops to g.
func applyGroupPatch(g *service.DirectoryGroup, ops []patchOp) error {
	for _, op := range ops {
		if op.path == "" {
			expanded, err := pathless(op)
			if err != nil {
				return err
			}
			if err := applyGroupPatch(g, expanded); err != nil {
				return err
			}
			continue
		}
		t, err := parseTarget(op.path, schemaGroup)
		if err != nil {
			return err
		}
		if err := applyGroupTarget(g, op, t); err != nil {
			return err
		}
	}
	return nil
}

func applyGroupTarget(g *service.DirectoryGroup, op patchOp, t target) error {
	switch t.attr {
	case "displayname", "externalid":
		if t.filter != nil || t.sub != "" {
			return bad(typeInvalidPath, "%q has no sub-attributes.", truncate(t.raw))
		}
		dst := &g.DisplayName
		if t.attr == "externalid" {
			dst = &g.ExternalID
		}
		if op.op == "remove" {
			*dst = ""
			return nil
		}
		v, err := asString(t.raw, op.value)
		if err != nil {
			return err
		}
		*dst = v
		return nil
	case "members":
		return applyMembers(g, op, t)
	case "id", "meta", "schemas":
		if t.attr == "id" && op.op != "remove" {
			if v, ok := op.value.(string); ok && v == g.ID {
				return nil // Okta sends {"id": ..., "displayName": ...} to rename
			}
		}
		return bad(typeMutability, "%s is read-only.", t.attr)
	}
	return bad(typeInvalidPath, "Unknown attribute %q.", truncate(t.raw))
}

func applyMembers(g *service.DirectoryGroup, op patchOp, t target) error {
	if t.sub != "" && t.sub != "value" {
		return bad(typeInvalidPath, "Unknown attribute %q.", truncate(t.raw))
	}
	if t.filter != nil {
		if op.op != "remove" {
			return bad(typeInvalidPath, "Add members with path \"members\" and a list value; filters select members to remove.")
		}
		keep := g.Members[:0:0]
		for _, m := range g.Members {
			hit, err := evalMember(t.filter, m)
			if err != nil {
				return err
			}
			if !hit {
				keep = append(keep, m)
			}
		}
		g.Members = keep
		return nil
	}
	var list []service.DirectoryRef
	if op.hasValue {
		var err error
		if t.sub == "value" { // members.value: a bare id or list of ids
			list, err = memberIDs(op.value)
		} else {
			list, err = parseMembers(op.value)
		}
		if err != nil {
			return err
		}
	}
	switch op.op {
	case "replace":
		g.Members = dedupe(list)
	case "add":
		g.Members = dedupe(append(g.Members, list...))
	case "remove":
		if !op.hasValue { // remove every member
			g.Members = nil
			return nil
		}
		drop := map[string]bool{}
		for _, m := range list {
			drop[m.ID] = true
		}
		keep := g.Members[:0:0]
		for _, m := range g.Members {
			if !drop[m.ID] {
				keep = append(keep, m)
			}
		}
		g.Members = keep
	}
	return nil
}

func memberIDs(v any) ([]service.DirectoryRef, error) {
	switch x := v.(type) {
	case string:
		return []service.DirectoryRef{{ID: x}}, nil
	case []any:
		out := make([]service.DirectoryRef, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, bad(typeInvalidValue, "members.value must be user ids.")
			}
			out = append(out, service.DirectoryRef{ID: s})
		}
		return out, nil
	}
	return nil, bad(typeInvalidValue, "members.value must be user ids.")
}

func dedupe(list []service.DirectoryRef) []service.DirectoryRef {
	seen := map[string]bool{}
	out := list[:0:0]
	for _, m := range list {
		if !seen[m.ID] {
			seen[m.ID] = true
			out = append(out, m)
		}
	}
	return out
}

// evalMember evaluates members[...]: value is the user id, exact.
func evalMember(e filter.Expression, m service.DirectoryRef) (bool, error) {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		l, err := evalMember(x.Left, m)
		if err != nil {
			return false, err
		}
		r, err := evalMember(x.Right, m)
		if err != nil {
			return false, err
		}
		if strings.EqualFold(string(x.Operator), "or") {
			return l || r, nil
		}
		return l && r, nil
	case *filter.NotExpression:
		v, err := evalMember(x.Expression, m)
		return !v, err
	case *filter.AttributeExpression:
		if !strings.EqualFold(x.AttributePath.AttributeName, "value") {
			return false, bad(typeInvalidPath, "Members can be selected by value only.")
		}
		s, ok := x.CompareValue.(string)
		if !ok {
			return false, bad(typeInvalidPath, "Compare member values with a string.")
		}
		switch strings.ToLower(string(x.Operator)) {
		case "eq":
			return m.ID == unescape(s), nil
		case "ne":
			return m.ID != unescape(s), nil
		}
		return false, bad(typeInvalidPath, "Members can be selected with eq or ne only.")
	}
	return false, bad(typeInvalidPath, "Unsupported filter on members.")
}
