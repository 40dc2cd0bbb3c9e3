package service

import (
	"slices"
	"strings"
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
}

// Key records changed keys.
func (c *Changes) Key(hashes ...string) { c.Keys = append(c.Keys, hashes...) }

// User records changed users.
func (c *Changes) User(ids ...string) { c.Users = append(c.Users, ids...) }

// Team records changed teams.
func (c *Changes) Team(ids ...string) { c.Teams = append(c.Teams, ids...) }

// Session records changed sessions.
func (c *Changes) Session(ids ...string) { c.Sessions = append(c.Sessions, ids...) }

// Empty reports whether nothing was recorded.
func (c Changes) Empty() bool {
	return len(c.Keys)+len(c.Users)+len(c.Teams)+len(c.Sessions) == 0
}

// Change prefixes in notification payloads.
const (
	prefixKey     = "k:"
	prefixUser    = "u:"
	prefixTeam    = "t:"
	prefixSession = "s:"
)

// Encode renders the changes as notification payloads of at most max
// bytes each: one "k:<hash>", "u:<id>", "t:<id>" or "s:<id>" per line.
func (c Changes) Encode(max int) []string {
	var out []string
	var b strings.Builder
	add := func(prefix string, ids []string) {
		for _, id := range slices.Compact(slices.Sorted(slices.Values(ids))) {
			line := prefix + id
			if b.Len() > 0 && b.Len()+1+len(line) > max {
				out = append(out, b.String())
				b.Reset()
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
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// DecodeChanges parses a payload written by Encode. Unknown lines are
// skipped (a newer replica may send kinds this one does not know); the
// payload "*" (the listener reconnected) is reported as all.
func DecodeChanges(payload string) (c Changes, all bool) {
	if payload == "*" {
		return Changes{}, true
	}
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
		}
	}
	return c, false
}
