package gormstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keygate/keygate/store"
)

// ---- store.Cond → SQL ----

// errBadCond: a condition names an unknown field or applies an operator the
// field does not support. The service builds conditions only from what it
// validated, so this is a programming error, never a wider match.
var errBadCond = errors.New("invalid search condition")

type fieldKind int

const (
	kindExact  fieldKind = iota // case-sensitive text
	kindFold                    // case-insensitive text: expr is lower-case, the value is lowered
	kindBool                    // boolean column
	kindTime                    // timestamp column
	kindEmails                  // users: email_lower or any directory e-mail
	kindMember                  // teams: a member's user id
)

type fieldSpec struct {
	expr string
	kind fieldKind
}

// userFields and teamFields map store.Cond field names to SQL. lower() is
// ASCII-only in SQLite, so a non-ASCII display name matches
// case-insensitively only in its ASCII letters there; e-mails use the
// email_lower column, lowered in Go, and are exact in both dialects.
var (
	userFields = map[string]fieldSpec{
		store.UserFieldID:         {"id", kindExact},
		store.UserFieldEmail:      {"email_lower", kindFold},
		store.UserFieldEmails:     {"", kindEmails},
		store.UserFieldExternalID: {"external_id", kindExact},
		store.UserFieldAlias:      {"lower(alias)", kindFold},
		store.UserFieldDisabled:   {"disabled", kindBool},
		store.UserFieldCreatedAt:  {"created_at", kindTime},
		store.UserFieldUpdatedAt:  {"updated_at", kindTime},
	}
	teamFields = map[string]fieldSpec{
		store.TeamFieldID:               {"id", kindExact},
		store.TeamFieldAlias:            {"lower(alias)", kindFold},
		store.TeamFieldExternalID:       {"external_id", kindExact},
		store.TeamFieldDirectoryManaged: {"directory_managed", kindBool},
		store.TeamFieldMember:           {"", kindMember},
		store.TeamFieldCreatedAt:        {"created_at", kindTime},
		store.TeamFieldUpdatedAt:        {"updated_at", kindTime},
	}
)

// Bounds on a condition's size: SCIM filters come from clients, and one
// with thousands of terms is an attack on the database, not a query.
const (
	maxCondDepth  = 32
	maxCondLeaves = 64
)

type sqlFrag struct {
	sql  string
	args []any
}

// condSQL translates c (nil: no condition) into a WHERE fragment.
func (s *Store) condSQL(c *store.Cond, fields map[string]fieldSpec) (*sqlFrag, error) {
	if c == nil {
		return nil, nil
	}
	leaves := 0
	f, err := s.cond(*c, fields, 0, &leaves)
	if err != nil {
		return nil, err
	}
	return &f, nil
}

func (s *Store) cond(c store.Cond, fields map[string]fieldSpec, depth int, leaves *int) (sqlFrag, error) {
	if depth > maxCondDepth {
		return sqlFrag{}, fmt.Errorf("%w: nested more than %d levels", errBadCond, maxCondDepth)
	}
	switch c.Op {
	case store.CondAnd, store.CondOr:
		if len(c.Sub) < 2 {
			return sqlFrag{}, fmt.Errorf("%w: %s needs two or more conditions", errBadCond, c.Op)
		}
		parts := make([]string, 0, len(c.Sub))
		var args []any
		for _, sub := range c.Sub {
			f, err := s.cond(sub, fields, depth+1, leaves)
			if err != nil {
				return sqlFrag{}, err
			}
			parts = append(parts, f.sql)
			args = append(args, f.args...)
		}
		join := " AND "
		if c.Op == store.CondOr {
			join = " OR "
		}
		return sqlFrag{"(" + strings.Join(parts, join) + ")", args}, nil
	case store.CondNot:
		if len(c.Sub) != 1 {
			return sqlFrag{}, fmt.Errorf("%w: not needs one condition", errBadCond)
		}
		f, err := s.cond(c.Sub[0], fields, depth+1, leaves)
		if err != nil {
			return sqlFrag{}, err
		}
		return sqlFrag{"NOT " + f.sql, f.args}, nil
	}
	*leaves++
	if *leaves > maxCondLeaves {
		return sqlFrag{}, fmt.Errorf("%w: more than %d comparisons", errBadCond, maxCondLeaves)
	}
	spec, ok := fields[c.Field]
	if !ok {
		return sqlFrag{}, fmt.Errorf("%w: unknown field %q", errBadCond, c.Field)
	}
	if c.Op == store.CondNe { // ne is "not eq", whatever the field
		f, err := s.leaf(spec, store.CondEq, c.Value)
		if err != nil {
			return sqlFrag{}, err
		}
		return sqlFrag{"NOT " + f.sql, f.args}, nil
	}
	return s.leaf(spec, c.Op, c.Value)
}

func (s *Store) leaf(spec fieldSpec, op store.CondOp, value any) (sqlFrag, error) {
	bad := func() (sqlFrag, error) {
		return sqlFrag{}, fmt.Errorf("%w: operator %s with %T on %q", errBadCond, op, value, spec.expr)
	}
	switch spec.kind {
	case kindBool:
		if op == store.CondPr {
			return sqlFrag{"(1=1)", nil}, nil
		}
		b, ok := value.(bool)
		if !ok || op != store.CondEq {
			return bad()
		}
		return sqlFrag{"(" + spec.expr + " = ?)", []any{b}}, nil
	case kindTime:
		if op == store.CondPr {
			return sqlFrag{"(1=1)", nil}, nil
		}
		t, ok := value.(time.Time)
		cmp, known := comparison(op)
		if !ok || !known {
			return bad()
		}
		return sqlFrag{"(" + spec.expr + " " + cmp + " ?)", []any{dbTime(t)}}, nil
	case kindMember:
		switch op {
		case store.CondPr:
			return sqlFrag{"(id IN (SELECT team_id FROM memberships))", nil}, nil
		case store.CondEq:
			v, ok := value.(string)
			if !ok {
				return bad()
			}
			return sqlFrag{"(id IN (SELECT team_id FROM memberships WHERE user_id = ?))", []any{v}}, nil
		}
		return bad()
	case kindEmails:
		if op == store.CondPr {
			return sqlFrag{"(email_lower <> '' OR directory_emails <> '')", nil}, nil
		}
		v, ok := value.(string)
		if !ok {
			return bad()
		}
		v = strings.ToLower(v)
		if strings.Contains(v, "\n") { // the list separator: no address contains it
			return sqlFrag{"(1=0)", nil}, nil
		}
		primary, err := s.text("email_lower", op, v)
		if err != nil {
			return bad()
		}
		var listed sqlFrag
		switch op {
		case store.CondEq:
			listed = s.contains("directory_emails", "\n"+v+"\n")
		case store.CondCo:
			listed = s.contains("directory_emails", v)
		case store.CondSw:
			listed = s.contains("directory_emails", "\n"+v)
		case store.CondEw:
			listed = s.contains("directory_emails", v+"\n")
		default:
			return bad()
		}
		return sqlFrag{"(" + primary.sql + " OR " + listed.sql + ")", append(primary.args, listed.args...)}, nil
	}
	v, ok := value.(string)
	if op != store.CondPr && !ok {
		return bad()
	}
	if spec.kind == kindFold {
		v = strings.ToLower(v)
	}
	f, err := s.text(spec.expr, op, v)
	if err != nil {
		return bad()
	}
	return f, nil
}

// text compares a text expression without LIKE, whose case rules differ
// between SQLite (ASCII-insensitive) and PostgreSQL (sensitive): substring
// functions are exact in both, and callers lower both sides where the
// attribute is case-insensitive.
func (s *Store) text(expr string, op store.CondOp, v string) (sqlFrag, error) {
	n := utf8.RuneCountInString(v)
	switch op {
	case store.CondEq:
		return sqlFrag{"(" + expr + " = ?)", []any{v}}, nil
	case store.CondCo:
		return s.contains(expr, v), nil
	case store.CondSw:
		return sqlFrag{"(substr(" + expr + ", 1, ?) = ?)", []any{n, v}}, nil
	case store.CondEw:
		return sqlFrag{"(length(" + expr + ") >= ? AND substr(" + expr + ", length(" + expr + ") - ? + 1) = ?)", []any{n, n, v}}, nil
	case store.CondPr:
		return sqlFrag{"(" + expr + " <> '')", nil}, nil
	}
	if cmp, ok := comparison(op); ok {
		return sqlFrag{"(" + expr + " " + cmp + " ?)", []any{v}}, nil
	}
	return sqlFrag{}, errBadCond
}

func (s *Store) contains(expr, v string) sqlFrag {
	if s.dialect == DialectPostgres {
		return sqlFrag{"(strpos(" + expr + ", ?) > 0)", []any{v}}
	}
	return sqlFrag{"(instr(" + expr + ", ?) > 0)", []any{v}}
}

func comparison(op store.CondOp) (string, bool) {
	switch op {
	case store.CondEq:
		return "=", true
	case store.CondGt:
		return ">", true
	case store.CondGe:
		return ">=", true
	case store.CondLt:
		return "<", true
	case store.CondLe:
		return "<=", true
	}
	return "", false
}

// ---- directory profile ----

// directoryJSON is the stored form of store.DirectoryProfile; its own
// struct so renaming a Go field never changes stored data.
type directoryJSON struct {
	Provisioned    bool                 `json:"provisioned,omitempty"`
	GivenName      string               `json:"given_name,omitempty"`
	FamilyName     string               `json:"family_name,omitempty"`
	Emails         []directoryEmailJSON `json:"emails,omitempty"`
	EmployeeNumber string               `json:"employee_number,omitempty"`
	Department     string               `json:"department,omitempty"`
}

type directoryEmailJSON struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// encodeDirectory returns the JSON column and the "\n"-delimited,
// lower-case e-mail list the emails condition searches ("" when none).
func encodeDirectory(d *store.DirectoryProfile) (string, string, error) {
	if d == nil {
		return "", "", nil
	}
	j := directoryJSON{Provisioned: d.Provisioned, GivenName: d.GivenName, FamilyName: d.FamilyName, EmployeeNumber: d.EmployeeNumber, Department: d.Department}
	var list strings.Builder
	for _, e := range d.Emails {
		j.Emails = append(j.Emails, directoryEmailJSON(e))
		if e.Value != "" && !strings.Contains(e.Value, "\n") {
			if list.Len() == 0 {
				list.WriteString("\n")
			}
			list.WriteString(strings.ToLower(e.Value) + "\n")
		}
	}
	b, err := json.Marshal(j)
	if err != nil {
		return "", "", fmt.Errorf("encode directory: %w", err)
	}
	return string(b), list.String(), nil
}

func decodeDirectory(s string) (*store.DirectoryProfile, error) {
	if s == "" {
		return nil, nil
	}
	var j directoryJSON
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return nil, fmt.Errorf("decode directory: %w", err)
	}
	d := &store.DirectoryProfile{Provisioned: j.Provisioned, GivenName: j.GivenName, FamilyName: j.FamilyName, EmployeeNumber: j.EmployeeNumber, Department: j.Department}
	for _, e := range j.Emails {
		d.Emails = append(d.Emails, store.DirectoryEmail(e))
	}
	return d, nil
}
