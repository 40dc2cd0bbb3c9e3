package store

// ---- directory (SCIM provisioning) ----

// DirectoryProfile is what an identity provider pushed for a user by SCIM
// beyond the core fields (e-mail, display name, status): names, every
// e-mail address it listed, and the enterprise extension's employee number
// and department. Kept verbatim so SCIM can answer with what it was given.
type DirectoryProfile struct {
	// Provisioned: the directory created the account (SCIM POST); false
	// for an existing account it found and adopted, whose identifying
	// e-mail it may then not change.
	Provisioned    bool
	GivenName      string
	FamilyName     string
	Emails         []DirectoryEmail
	EmployeeNumber string
	Department     string
}

// DirectoryEmail is one entry of SCIM's emails list.
type DirectoryEmail struct {
	Value   string
	Type    string
	Primary bool
}

// Cond is one node of a search condition, the storage form of a SCIM
// filter: a leaf compares one field with a value (Op eq ... le, pr), an
// inner node combines Sub with and/or/not. Implementations translate it to
// their query language; an unknown field or operator is an error, never a
// silently wider match.
type Cond struct {
	Op    CondOp
	Field string // leaf only: one of the User*/Team* field names
	// Value is a string, bool or time.Time (leaf only; nil for pr).
	// Strings of case-insensitive fields are compared case-insensitively.
	Value any
	Sub   []Cond // and, or: two or more; not: exactly one
}

// CondOp is a comparison or a logical operator of Cond.
type CondOp string

// Condition operators (SCIM's, RFC 7644 section 3.4.2.2).
const (
	CondAnd CondOp = "and"
	CondOr  CondOp = "or"
	CondNot CondOp = "not"
	CondEq  CondOp = "eq"
	CondNe  CondOp = "ne"
	CondCo  CondOp = "co" // contains
	CondSw  CondOp = "sw" // starts with
	CondEw  CondOp = "ew" // ends with
	CondPr  CondOp = "pr" // present (not empty)
	CondGt  CondOp = "gt"
	CondGe  CondOp = "ge"
	CondLt  CondOp = "lt"
	CondLe  CondOp = "le"
)

// Fields a Cond over users may name.
const (
	UserFieldID         = "id"          // case-sensitive
	UserFieldEmail      = "email"       // case-insensitive
	UserFieldEmails     = "emails"      // case-insensitive: Email or any Directory e-mail
	UserFieldExternalID = "external_id" // case-sensitive
	UserFieldAlias      = "alias"       // case-insensitive
	UserFieldDisabled   = "disabled"    // bool
	UserFieldCreatedAt  = "created_at"  // time
	UserFieldUpdatedAt  = "updated_at"  // time
)

// Fields a Cond over teams may name.
const (
	TeamFieldID               = "id"                // case-sensitive
	TeamFieldAlias            = "alias"             // case-insensitive
	TeamFieldExternalID       = "external_id"       // case-sensitive
	TeamFieldDirectoryManaged = "directory_managed" // bool
	TeamFieldMember           = "member"            // eq only: a user id that is a member
	TeamFieldCreatedAt        = "created_at"        // time
	TeamFieldUpdatedAt        = "updated_at"        // time
)

// And combines conditions; nil entries are skipped, and one condition is
// returned as itself.
func And(cs ...*Cond) *Cond {
	var sub []Cond
	for _, c := range cs {
		if c != nil {
			sub = append(sub, *c)
		}
	}
	switch len(sub) {
	case 0:
		return nil
	case 1:
		return &sub[0]
	}
	return &Cond{Op: CondAnd, Sub: sub}
}
