package litellmimport

import (
	"fmt"
	"io"
	"strings"
)

// Print writes the report for an operator: a summary per kind, each
// change, every difference in access, the columns and tables not carried,
// each warning, and what to do about passwords and links.
func (r Report) Print(w io.Writer) {
	create, update := "created", "updated"
	if r.DryRun {
		create, update = "to create", "to update"
		fmt.Fprintln(w, "LiteLLM import: DRY RUN, nothing was written (Keygate's database was neither created nor migrated)")
	} else {
		fmt.Fprintln(w, "LiteLLM import")
	}
	if r.SchemaVersion != "" {
		fmt.Fprintln(w, "  source schema: LiteLLM migration", r.SchemaVersion)
	}
	for _, row := range []struct {
		name string
		c    Counts
	}{{"users", r.Users}, {"teams", r.Teams}, {"memberships", r.Memberships}, {"keys", r.Keys},
		{"invitations", r.Invitations}, {"daily spend", r.Spend}} {
		fmt.Fprintf(w, "  %-13s %d %s, %d %s, %d unchanged, %d skipped\n", row.name+":", row.c.Created, create,
			row.c.Updated, update, row.c.Unchanged, row.c.Skipped)
	}
	for _, c := range r.Changes {
		line := fmt.Sprintf("  %s %s %s", c.Op, c.Kind, c.ID)
		if len(c.Fields) > 0 {
			line += ": " + strings.Join(c.Fields, ", ")
		}
		fmt.Fprintln(w, line)
	}
	if len(r.AccessChanges) > 0 {
		fmt.Fprintln(w, "Access that differs from LiteLLM:")
		for _, a := range r.AccessChanges {
			fmt.Fprintln(w, "  -", a)
		}
	}
	if len(r.Ignored) > 0 {
		fmt.Fprintln(w, "Fields not carried (Keygate has no place for them), rows with a value:")
		for _, i := range r.Ignored {
			fmt.Fprintf(w, "  %s.%s: %d\n", i.Table, i.Column, i.Rows)
		}
	}
	if len(r.NotRead) > 0 {
		fmt.Fprintln(w, "LiteLLM tables with rows that are not imported:", strings.Join(r.NotRead, ", "))
	}
	for _, msg := range r.Warnings {
		fmt.Fprintln(w, "  warning:", msg)
	}
	verb := "changed"
	if r.DryRun {
		verb = "would change"
	}
	fmt.Fprintf(w, "%d records %s.\n", r.Changed(), verb)
	if r.Spend.Created > 0 {
		fmt.Fprintln(w, "Daily spend is imported as one entry per user, key, model and day (dated 00:00 UTC); per-request logs are not.")
	}
	if r.Invitations.Created > 0 {
		fmt.Fprintln(w, "Pending invitation links keep working until they expire: LiteLLM's <base>/ui?invitation_id=<id> and")
		fmt.Fprintln(w, "<base>/ui/onboarding?id=<id> both open Keygate's onboarding.")
	}
	if r.Users.Created > 0 {
		fmt.Fprintln(w, "Passwords were not imported (LiteLLM's hashes are unsalted SHA-256 or scrypt): send each user an")
		fmt.Fprintln(w, "invitation (POST /invitation/new) or let them use POST /user/forgot_password. API keys work as before.")
	}
}
