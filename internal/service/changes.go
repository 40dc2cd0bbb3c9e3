package service

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/keygate/keygate/auth"
)

// Changes names the records a write changed that cached access answers
// depend on: keys (by hash), users (their keys and sessions), teams (their
// keys) and sessions. Every input of the access decision maps to one of
// these: a key's own fields → Keys; the owner's role, models, budget or
// status, and their memberships → Users; a team's models, budget or status
// → Teams.
type Changes struct {
	Keys     []string
	Users    []string
	Teams    []string
	Sessions []string
	// Spent is recorded usage: cached budget figures are raised in place
	// rather than dropped (spend moves on every metered request, and
	// dropping would send every following request to the database).
	Spent []auth.Spent
	// Origin names the replica that made the change (set by Encode's
	// caller, read back by DecodeChanges): a replica must not raise its
	// figures twice for its own recorded spend.
	Origin string
}

// Key records changed keys.
func (c *Changes) Key(hashes ...string) { c.Keys = append(c.Keys, hashes...) }

// User records changed users.
func (c *Changes) User(ids ...string) { c.Users = append(c.Users, ids...) }

// Team records changed teams.
func (c *Changes) Team(ids ...string) { c.Teams = append(c.Teams, ids...) }

// Session records changed sessions.
func (c *Changes) Session(ids ...string) { c.Sessions = append(c.Sessions, ids...) }

// Spend records usage against a key (and its owner, team, membership).
func (c *Changes) Spend(s auth.Spent) {
	if s.Amount == 0 {
		return
	}
	for i, x := range c.Spent {
		if x.KeyHash == s.KeyHash && x.UserID == s.UserID && x.TeamID == s.TeamID {
			c.Spent[i].Amount += s.Amount
			return
		}
	}
	c.Spent = append(c.Spent, s)
}

// Empty reports whether nothing was recorded.
func (c Changes) Empty() bool {
	return len(c.Keys)+len(c.Users)+len(c.Teams)+len(c.Sessions)+len(c.Spent) == 0
}

// Change prefixes in notification payloads.
const (
	prefixKey     = "k:"
	prefixUser    = "u:"
	prefixTeam    = "t:"
	prefixSession = "s:"
	prefixSpent   = "p:"
	prefixOrigin  = "o:"
)

// Encode renders the changes as notification payloads of at most max
// bytes each: one "k:<hash>", "u:<id>", "t:<id>" or "s:<id>" per line.
func (c Changes) Encode(max int) []string {
	var out []string
	var b strings.Builder
	origin := ""
	if c.Origin != "" {
		origin = prefixOrigin + c.Origin
		b.WriteString(origin)
	}
	add := func(prefix string, ids []string) {
		for _, id := range slices.Compact(slices.Sorted(slices.Values(ids))) {
			line := prefix + id
			if b.Len() > 0 && b.Len()+1+len(line) > max {
				out = append(out, b.String())
				b.Reset()
				b.WriteString(origin) // every payload says where it comes from
			}
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(line)
		}
	}
	add(prefixKey, c.Keys)
	add(prefixUser, c.Users)
	add(prefixTeam, c.Teams)
	add(prefixSession, c.Sessions)
	var spent []string
	for _, x := range c.Spent {
		// Ids never hold '|' (keys are hex, users and teams are validated
		// ids), so the fields split cleanly.
		spent = append(spent, x.KeyHash+"|"+x.UserID+"|"+x.TeamID+"|"+strconv.FormatFloat(x.Amount, 'g', -1, 64))
	}
	add(prefixSpent, spent)
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// DecodeChanges parses a payload written by Encode. Unknown lines are
// skipped (a newer replica may send kinds this one does not know).
func DecodeChanges(payload string) (c Changes) {
	for _, line := range strings.Split(payload, "\n") {
		switch {
		case strings.HasPrefix(line, prefixKey):
			c.Key(line[len(prefixKey):])
		case strings.HasPrefix(line, prefixUser):
			c.User(line[len(prefixUser):])
		case strings.HasPrefix(line, prefixTeam):
			c.Team(line[len(prefixTeam):])
		case strings.HasPrefix(line, prefixSession):
			c.Session(line[len(prefixSession):])
		case strings.HasPrefix(line, prefixOrigin):
			c.Origin = line[len(prefixOrigin):]
		case strings.HasPrefix(line, prefixSpent):
			f := strings.Split(line[len(prefixSpent):], "|")
			if len(f) != 4 {
				continue
			}
			amount, err := strconv.ParseFloat(f[3], 64)
			if err != nil || math.IsNaN(amount) || math.IsInf(amount, 0) {
				continue
			}
			c.Spend(auth.Spent{KeyHash: f[0], UserID: f[1], TeamID: f[2], Amount: amount})
		}
	}
	return c
}
