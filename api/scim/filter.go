package scim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/keygate/keygate/store"
)

// maxFilterLen and maxFilterGroups bound a filter before it is parsed:
// real IdPs send a few dozen characters, and the parser's time grows with
// length and nesting (measured: about 0.3 s for 640 nested groups).
const (
	maxFilterLen    = 1024
	maxFilterGroups = 64
)

type valueKind int

const (
	kindText valueKind = iota
	kindBool
	kindTime
	kindMember
)

// filterable is one attribute a filter may name, and the store field it
// searches.
type filterable struct {
	field string
	kind  valueKind
	// invert: the stored boolean is the attribute's negation
	// (active ↔ disabled).
	invert bool
}

// userFilterables and groupFilterables: the attributes (lower-case,
// "attr" or "attr.sub") a filter may name. Anything else is invalidFilter,
// never ignored: ignoring a term would widen the answer.
var (
	userFilterables = map[string]filterable{
		"id":                {store.UserFieldID, kindText, false},
		"username":          {store.UserFieldEmail, kindText, false},
		"externalid":        {store.UserFieldExternalID, kindText, false},
		"displayname":       {store.UserFieldAlias, kindText, false},
		"emails":            {store.UserFieldEmails, kindText, false},
		"emails.value":      {store.UserFieldEmails, kindText, false},
		"active":            {store.UserFieldDisabled, kindBool, true},
		"meta.lastmodified": {store.UserFieldUpdatedAt, kindTime, false},
		"meta.created":      {store.UserFieldCreatedAt, kindTime, false},
	}
	groupFilterables = map[string]filterable{
		"id":                {store.TeamFieldID, kindText, false},
		"displayname":       {store.TeamFieldAlias, kindText, false},
		"externalid":        {store.TeamFieldExternalID, kindText, false},
		"members":           {store.TeamFieldMember, kindMember, false},
		"members.value":     {store.TeamFieldMember, kindMember, false},
		"meta.lastmodified": {store.TeamFieldUpdatedAt, kindTime, false},
		"meta.created":      {store.TeamFieldCreatedAt, kindTime, false},
	}
)

// filterSpec is what parseFilter needs to know of a resource type.
type filterSpec struct {
	schema string // core schema URN, allowed as an attribute prefix
	attrs  map[string]filterable
	// multi is the multi-valued attribute whose [..] filters are
	// understood ("emails", "members"); its "value" sub-attribute is
	// searched, other sub-attributes (type, primary, display) are not
	// stored per value and match anything.
	multi string
}

var (
	userFilter  = filterSpec{schema: schemaUser, attrs: userFilterables, multi: "emails"}
	groupFilter = filterSpec{schema: schemaGroup, attrs: groupFilterables, multi: "members"}
)

// entraValuePath matches Microsoft Entra ID's matching filter
// `emails[type eq "work"].value eq "x"`, which is not RFC 7644 grammar
// (a value path takes no sub-attribute inside a filter); it is rewritten to
// the equivalent `emails[type eq "work" and value eq "x"]`.
var (
	entraValuePath = regexp.MustCompile(`(?is)^\s*([a-z][a-z0-9_$-]*)\[([^\[\]]*)\]\.([a-z][a-z0-9_$-]*)\s+(eq|ne|co|sw|ew|gt|ge|lt|le)\s+(.+?)\s*$`)
	// anOr: the rewrite is only sound when the bracket holds no "or".
	anOr = regexp.MustCompile(`(?i)\sor\s`)
)

// parseFilter turns a SCIM filter into a store condition. An empty filter
// is nil (everything).
func parseFilter(raw string, spec filterSpec) (c *store.Cond, err error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	if len(raw) > maxFilterLen {
		return nil, bad(typeInvalidFilter, "The filter is longer than %d characters.", maxFilterLen)
	}
	if strings.Count(raw, "(")+strings.Count(raw, "[") > maxFilterGroups {
		return nil, bad(typeInvalidFilter, "The filter has more than %d groups.", maxFilterGroups)
	}
	if m := entraValuePath.FindStringSubmatch(raw); m != nil && !anOr.MatchString(m[2]) {
		raw = fmt.Sprintf("%s[%s and %s %s %s]", m[1], m[2], m[3], m[4], m[5])
	}
	defer func() {
		// The parser is third-party code fed with client input: a panic in
		// it is a bad filter, not a crashed request.
		if r := recover(); r != nil {
			c, err = nil, bad(typeInvalidFilter, "The filter could not be parsed.")
		}
	}()
	expr, perr := filter.ParseFilter([]byte(raw))
	if perr != nil {
		return nil, bad(typeInvalidFilter, "The filter is not valid SCIM filter syntax (RFC 7644 section 3.4.2.2).")
	}
	c, err = convert(expr, spec, 0)
	if err != nil {
		return nil, err
	}
	if c == nil { // e.g. emails[type eq "work"]: any user with an address
		return &store.Cond{Op: store.CondPr, Field: spec.attrs[spec.multi].field}, nil
	}
	return c, nil
}

const maxFilterDepth = 20

func convert(e filter.Expression, spec filterSpec, depth int) (*store.Cond, error) {
	if depth > maxFilterDepth {
		return nil, bad(typeInvalidFilter, "The filter is nested too deeply.")
	}
	switch x := e.(type) {
	case *filter.LogicalExpression:
		l, err := convert(x.Left, spec, depth+1)
		if err != nil {
			return nil, err
		}
		r, err := convert(x.Right, spec, depth+1)
		if err != nil {
			return nil, err
		}
		return combine(store.CondOp(strings.ToLower(string(x.Operator))), l, r), nil
	case *filter.NotExpression:
		inner, err := convert(x.Expression, spec, depth+1)
		if err != nil {
			return nil, err
		}
		if inner == nil {
			return nil, bad(typeInvalidFilter, "not() of a condition that matches everything is not supported.")
		}
		return &store.Cond{Op: store.CondNot, Sub: []store.Cond{*inner}}, nil
	case *filter.AttributeExpression:
		return leaf(*x, spec, "")
	case *filter.ValuePath:
		name, err := attrName(x.AttributePath, spec)
		if err != nil {
			return nil, err
		}
		if name != spec.multi {
			return nil, bad(typeInvalidFilter, "Filtering inside %q is not supported.", name)
		}
		return valueFilter(x.ValueFilter, spec, depth+1)
	}
	return nil, bad(typeInvalidFilter, "Unsupported filter expression.")
}

// valueFilter converts the inside of emails[...] or members[...]; nil
// means "matches every value".
func valueFilter(e filter.Expression, spec filterSpec, depth int) (*store.Cond, error) {
	if depth > maxFilterDepth {
		return nil, bad(typeInvalidFilter, "The filter is nested too deeply.")
	}
	switch x := e.(type) {
	case *filter.LogicalExpression:
		l, err := valueFilter(x.Left, spec, depth+1)
		if err != nil {
			return nil, err
		}
		r, err := valueFilter(x.Right, spec, depth+1)
		if err != nil {
			return nil, err
		}
		return combine(store.CondOp(strings.ToLower(string(x.Operator))), l, r), nil
	case *filter.AttributeExpression:
		sub := strings.ToLower(x.AttributePath.AttributeName)
		switch sub {
		case "value":
			return leaf(*x, spec, spec.multi+".value")
		case "type", "primary", "display", "$ref":
			return nil, nil
		}
		return nil, bad(typeInvalidFilter, "Unknown attribute %q inside %s[...].", sub, spec.multi)
	}
	return nil, bad(typeInvalidFilter, "Only comparisons joined by and/or are supported inside %s[...].", spec.multi)
}

// combine joins two conditions, nil meaning "everything": and drops it,
// or becomes it.
func combine(op store.CondOp, l, r *store.Cond) *store.Cond {
	if op == store.CondOr {
		if l == nil || r == nil {
			return nil
		}
		return &store.Cond{Op: store.CondOr, Sub: []store.Cond{*l, *r}}
	}
	return store.And(l, r)
}

func attrName(p filter.AttributePath, spec filterSpec) (string, error) {
	if uri := p.URI(); uri != "" && !strings.EqualFold(uri, spec.schema) {
		return "", bad(typeInvalidFilter, "Attribute %q cannot be filtered on.", p.String())
	}
	name := strings.ToLower(p.AttributeName)
	if sub := p.SubAttributeName(); sub != "" {
		name += "." + strings.ToLower(sub)
	}
	return name, nil
}

var filterOps = map[string]store.CondOp{"eq": store.CondEq, "ne": store.CondNe, "co": store.CondCo, "sw": store.CondSw,
	"ew": store.CondEw, "pr": store.CondPr, "gt": store.CondGt, "ge": store.CondGe, "lt": store.CondLt, "le": store.CondLe}

func leaf(x filter.AttributeExpression, spec filterSpec, name string) (*store.Cond, error) {
	if name == "" {
		var err error
		if name, err = attrName(x.AttributePath, spec); err != nil {
			return nil, err
		}
	}
	a, ok := spec.attrs[name]
	if !ok {
		return nil, bad(typeInvalidFilter, "Attribute %q is unknown or cannot be filtered on.", x.AttributePath.String())
	}
	op, ok := filterOps[strings.ToLower(string(x.Operator))]
	if !ok {
		return nil, bad(typeInvalidFilter, "Unknown operator %q.", x.Operator)
	}
	c := &store.Cond{Op: op, Field: a.field}
	if op == store.CondPr {
		return c, nil
	}
	switch a.kind {
	case kindText, kindMember:
		s, ok := x.CompareValue.(string)
		if !ok {
			return nil, bad(typeInvalidFilter, "%s compares with a string.", name)
		}
		if a.kind == kindMember && op != store.CondEq && op != store.CondNe {
			return nil, bad(typeInvalidFilter, "%s supports eq, ne and pr only.", name)
		}
		v, ok := filterText(s)
		if !ok {
			return nil, bad(typeInvalidFilter, "%s compares with UTF-8 text without NUL characters.", name)
		}
		c.Value = v
	case kindBool:
		b, err := asBool(name, x.CompareValue)
		if err != nil || (op != store.CondEq && op != store.CondNe) {
			return nil, bad(typeInvalidFilter, "%s compares with true or false using eq or ne.", name)
		}
		c.Value = b != a.invert
	case kindTime:
		s, _ := x.CompareValue.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || op == store.CondCo || op == store.CondSw || op == store.CondEw {
			return nil, bad(typeInvalidFilter, "%s compares with an RFC 3339 date-time using eq, ne, gt, ge, lt or le.", name)
		}
		c.Value = t
	}
	return c, nil
}

// filterText is a filter's compare value decoded: a NUL (written \u0000,
// which the edge check of the raw query cannot see) or invalid UTF-8 is
// never in stored text, and PostgreSQL refuses it mid-query, so it is the
// client's mistake.
func filterText(s string) (string, bool) {
	v := unescape(s)
	return v, utf8.ValidString(v) && strings.IndexByte(v, 0) < 0
}

// checkFilterText applies filterText to every compare value of e.
func checkFilterText(e filter.Expression) bool {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		return checkFilterText(x.Left) && checkFilterText(x.Right)
	case *filter.NotExpression:
		return checkFilterText(x.Expression)
	case *filter.ValuePath:
		return checkFilterText(x.ValueFilter)
	case *filter.AttributeExpression:
		s, isText := x.CompareValue.(string)
		_, ok := filterText(s)
		return !isText || ok
	}
	return true
}

// unescape decodes JSON string escapes: the parser hands a quoted value
// over as written (`a\"b`), while SCIM filter values are JSON strings.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out string
	if err := json.Unmarshal([]byte(`"`+s+`"`), &out); err != nil {
		return s
	}
	return out
}
