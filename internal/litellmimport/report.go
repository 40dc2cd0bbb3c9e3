package litellmimport

import (
	"fmt"
	"io"
	"strings"
)

// Print writes the report for an operator: a summary per kind, each
// change, each warning, and what to do about passwords.
func (r Report) Print(w io.Writer) {
	create, update := "created", "updated"
	if r.DryRun {
		create, update = "to create", "to update"
		fmt.Fprintln(w, "LiteLLM import: DRY RUN, nothing was written")
	} else {
		fmt.Fprintln(w, "LiteLLM import")
	}
	for _, row := range []struct {
		name string
		c    Counts
	}{{"users", r.Users}, {"teams", r.Teams}, {"memberships", r.Memberships}, {"keys", r.Keys}} {
		fmt.Fprintf(w, "  %-12s %d %s, %d %s, %d unchanged, %d skipped\n", row.name+":", row.c.Created, create,
			row.c.Updated, update, row.c.Unchanged, row.c.Skipped)
	}
	for _, c := range r.Changes {
		line := fmt.Sprintf("  %s %s %s", c.Op, c.Kind, c.ID)
		if len(c.Fields) > 0 {
			line += ": " + strings.Join(c.Fields, ", ")
		}
		fmt.Fprintln(w, line)
	}
	for _, msg := range r.Warnings {
		fmt.Fprintln(w, "  warning:", msg)
	}
	verb := "changed"
	if r.DryRun {
		verb = "would change"
	}
	fmt.Fprintf(w, "%d records %s.\n", r.Changed(), verb)
	if r.Users.Created > 0 {
		fmt.Fprintln(w, "Passwords were not imported (LiteLLM's hashes are unsalted SHA-256 or scrypt): send each user an")
		fmt.Fprintln(w, "invitation (POST /invitation/new) or let them use POST /user/forgot_password. API keys work as before.")
	}
}
