// Package litellmimport copies a LiteLLM proxy's users, teams, team
// memberships, API keys, pending invitations and daily spend into Keygate
// (`keygate import-litellm`), so that every credential is allowed exactly
// what LiteLLM allowed it; where Keygate cannot hold a rule the report
// says so, row by row.
//
// LiteLLM stores each key as the SHA-256 hex of the raw key, exactly as
// Keygate does, so imported keys keep working unchanged. Passwords are not
// imported: LiteLLM's are unsalted SHA-256 or scrypt, which Keygate will
// not accept as argon2id; users set a new one through an invitation or a
// password reset.
//
// The import is idempotent. Records are matched by user id, team id,
// (team, user) and key hash; a record that exists is updated only where an
// imported field differs, so a second run reports no changes. LiteLLM is
// treated as the source of truth for the fields it owns (role, budgets,
// spend, models, expiry, block state) until the cut-over: re-running the
// import after Keygate has taken over would set spend back to LiteLLM's.
// All writes happen in one transaction; a dry run only reads.
package litellmimport

import (
	"context"
	"fmt"
	"time"

	"github.com/keygate/keygate/store"
)

// Options configures Apply and Import.
type Options struct {
	// DryRun computes and reports the changes without writing anything.
	DryRun bool
	// Now is the clock for created/updated times (default time.Now).
	Now func() time.Time
	// SSOIssuer, when set, carries each user's sso_user_id as a link to
	// this issuer (the configured IdP's exact issuer URL), so the person
	// signing in there lands on the imported account.
	SSOIssuer string
	// StrictRoles imports roles Keygate does not know (app_owner, app_user,
	// customer, team, org_admin, none) as internal_user_viewer instead of
	// internal_user, which is how LiteLLM treats them.
	StrictRoles bool
}

// Counts tallies what happened to one kind of record.
type Counts struct {
	Created   int
	Updated   int
	Unchanged int
	// Skipped records were not imported (UI session keys, rows whose
	// reference cannot be resolved); each has a warning, except UI
	// session keys.
	Skipped int
}

// Change is one record created or updated (or, in a dry run, that would
// be).
type Change struct {
	Op   string // "create" or "update"
	Kind string // "user", "team", "membership" or "key"
	// ID names the record: user or team id, "team/user", or for keys the
	// key name and the first 12 characters of the hash (never the key).
	ID string
	// Fields lists the fields an update changes.
	Fields []string
}

// Report says what an import did or, in a dry run, would do.
type Report struct {
	DryRun                          bool
	Users, Teams, Memberships, Keys Counts
	// Invitations are LiteLLM's invitation links: pending ones are
	// imported with their expiry, used and expired ones skipped.
	Invitations Counts
	// Spend counts LiteLLM_DailyUserSpend rows imported as daily totals
	// (they are not listed in Changes).
	Spend   Counts
	Changes []Change
	// AccessChanges says, row by row, where an imported credential is
	// allowed something other than LiteLLM allowed it, and why.
	AccessChanges []string
	// Ignored counts, per LiteLLM table and column, the rows whose value
	// Keygate has no place for.
	Ignored []Ignored
	// SchemaVersion is the newest LiteLLM migration of the source.
	SchemaVersion string
	// NotRead names LiteLLM tables with rows the import does not read.
	NotRead []string
	// Warnings describe rows imported differently from the source or
	// skipped; they name ids, never secrets.
	Warnings []string
}

// Ignored is one column of one LiteLLM table that is not carried.
type Ignored struct {
	Table, Column string
	Rows          int
}

// Changed is the number of records created or updated.
func (r Report) Changed() int { return len(r.Changes) + r.Spend.Created + r.Spend.Updated }

// Import reads the LiteLLM database at fromURL and applies it to st.
func Import(ctx context.Context, fromURL string, st store.Store, o Options) (Report, error) {
	src, err := Read(ctx, fromURL)
	if err != nil {
		return Report{DryRun: o.DryRun}, err
	}
	return Apply(ctx, src, st, o)
}

// Apply writes src into st (in one transaction), or in a dry run only
// computes what it would write.
func Apply(ctx context.Context, src *Source, st store.Store, o Options) (Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	run := func(s store.Store) (Report, error) {
		im := &importer{st: s, write: !o.DryRun, now: o.Now().UTC(), opts: o,
			rep: Report{DryRun: o.DryRun, SchemaVersion: src.SchemaVersion, NotRead: src.OtherTables}}
		for _, n := range src.Notes {
			im.warn("%s", n)
		}
		err := im.run(ctx, src)
		return im.rep, err
	}
	if o.DryRun {
		return run(st)
	}
	var rep Report
	err := st.Tx(ctx, func(tx store.Store) error {
		var err error
		rep, err = run(tx)
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("litellmimport: nothing was imported: %w", err)
	}
	return rep, nil
}

// importer carries one run's state.
type importer struct {
	st    store.Store
	write bool
	now   time.Time
	opts  Options
	rep   Report

	users map[string]bool // ids that exist after the import
	teams map[string]bool
	// emailOwner maps a lower-cased e-mail to the imported user that
	// claimed it first (LiteLLM does not enforce uniqueness).
	emailOwner map[string]string
	// userByEmail resolves members_with_roles entries that carry only an
	// e-mail.
	userByEmail map[string]string
	// aliases maps a key alias to the hash that claimed it first.
	aliases map[string]string
	// keyTeams maps an imported key's hash to its team (for spend rows).
	keyTeams map[string]string
	// ignored counts "table\x00column" values not carried.
	ignored map[string]int
}

func (im *importer) warn(format string, a ...any) {
	im.rep.Warnings = append(im.rep.Warnings, fmt.Sprintf(format, a...))
}

func (im *importer) change(c *Counts, op, kind, id string, fields []string) {
	if op == "create" {
		c.Created++
	} else {
		c.Updated++
	}
	im.rep.Changes = append(im.rep.Changes, Change{Op: op, Kind: kind, ID: id, Fields: fields})
}

func (im *importer) run(ctx context.Context, src *Source) error {
	im.users, im.teams = map[string]bool{}, map[string]bool{}
	im.emailOwner, im.userByEmail = map[string]string{}, map[string]string{}
	im.keyTeams, im.ignored = map[string]string{}, map[string]int{}
	defer im.finishIgnored()
	im.ssoNotCarried(src)
	for _, u := range src.Users {
		if err := im.user(ctx, u); err != nil {
			return err
		}
	}
	for _, t := range src.Teams {
		if err := im.team(ctx, t); err != nil {
			return err
		}
	}
	if err := im.memberships(ctx, src); err != nil {
		return err
	}
	for _, k := range src.Keys {
		if err := im.key(ctx, k); err != nil {
			return err
		}
	}
	im.organizations(src)
	if err := im.invitations(ctx, src); err != nil {
		return err
	}
	if err := im.spend(ctx, src); err != nil {
		return err
	}
	if im.write && im.rep.Changed() > 0 {
		return im.audit(ctx)
	}
	return nil
}

// audit records the import itself: one event with the counts, in the
// import's transaction.
func (im *importer) audit(ctx context.Context) error {
	counts := func(c Counts) map[string]any {
		return map[string]any{"created": c.Created, "updated": c.Updated, "unchanged": c.Unchanged, "skipped": c.Skipped}
	}
	err := im.st.AppendAudit(ctx, &store.AuditEvent{At: im.now, Action: "import.litellm", ActorID: "import-litellm",
		TargetType: "import", TargetID: "litellm",
		After: map[string]any{"users": counts(im.rep.Users), "teams": counts(im.rep.Teams),
			"memberships": counts(im.rep.Memberships), "keys": counts(im.rep.Keys), "invitations": counts(im.rep.Invitations),
			"spend": counts(im.rep.Spend), "warnings": len(im.rep.Warnings)}})
	if err != nil {
		return fmt.Errorf("litellmimport: audit: %w", err)
	}
	return nil
}

// exists reports whether a store lookup found its record.
func exists(err error, what string) (bool, error) {
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("litellmimport: look up %s: %w", what, err)
}
