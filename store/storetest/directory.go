package storetest

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

// testUsersDirectory: the SCIM fields of a user survive storage exactly;
// a user without a directory profile reads back with nil.
func testUsersDirectory(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := store.User{ID: "d1", Email: "Ada@Example.com", Alias: "Ada Lovelace", Role: "internal_user_viewer",
		ExternalID: "00uAbC", CreatedAt: at(0), UpdatedAt: at(1),
		Directory: &store.DirectoryProfile{Provisioned: true, GivenName: "Ada", FamilyName: "Lovelace", EmployeeNumber: "0815", Department: "R&D",
			Emails: []store.DirectoryEmail{{Value: "ada@example.com", Type: "work", Primary: true}, {Value: "ada@home.example", Type: "home"}}}}
	want := u
	require.NoError(t, s.CreateUser(ctx, &u))
	got, err := s.GetUser(ctx, "d1")
	require.NoError(t, err)
	require.Equal(t, want, got)

	plain := mkUser(t, s, "plain", "plain@example.com", at(2))
	got, err = s.GetUser(ctx, plain.ID)
	require.NoError(t, err)
	require.Nil(t, got.Directory, "never provisioned")
	require.Empty(t, got.ExternalID)

	// An empty profile still marks the user as provisioned.
	got, err = s.UpdateUser(ctx, plain.ID, func(u *store.User) error {
		u.Directory = &store.DirectoryProfile{}
		u.ExternalID = "ext-plain"
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, &store.DirectoryProfile{}, got.Directory)
	got, err = s.GetUser(ctx, plain.ID)
	require.NoError(t, err)
	require.Equal(t, &store.DirectoryProfile{}, got.Directory)
	require.Equal(t, "ext-plain", got.ExternalID)

	got, err = s.UpdateUser(ctx, "d1", func(u *store.User) error { u.Directory = nil; u.ExternalID = ""; return nil })
	require.NoError(t, err)
	require.Nil(t, got.Directory)
}

// testTeamsDirectory: a team's SCIM fields round-trip.
func testTeamsDirectory(t *testing.T, s store.Store) {
	ctx := t.Context()
	tm := store.Team{ID: "g1", Alias: "LLM Users", ExternalID: "aad-obj-1", DirectoryManaged: true, CreatedAt: at(0), UpdatedAt: at(0)}
	want := tm
	require.NoError(t, s.CreateTeam(ctx, &tm))
	got, err := s.GetTeam(ctx, "g1")
	require.NoError(t, err)
	require.Equal(t, want, got)
	got, err = s.UpdateTeam(ctx, "g1", func(t *store.Team) error { t.DirectoryManaged = false; t.ExternalID = ""; return nil })
	require.NoError(t, err)
	require.False(t, got.DirectoryManaged)
	require.Empty(t, got.ExternalID)
}

func whereUserIDs(t *testing.T, s store.Store, c *store.Cond) []string {
	t.Helper()
	users, total, err := s.ListUsers(t.Context(), store.UserFilter{Where: c, Page: store.Page{Limit: 100}})
	require.NoError(t, err)
	ids := make([]string, 0, len(users))
	for _, u := range users {
		ids = append(ids, u.ID)
	}
	require.EqualValues(t, len(ids), total)
	sort.Strings(ids)
	return ids
}

func leaf(field string, op store.CondOp, v any) *store.Cond {
	return &store.Cond{Op: op, Field: field, Value: v}
}

// testUsersWhere: every operator of SCIM's filter language on every user
// field, with case rules per field (e-mail and display name fold case,
// ids and externalId do not), the same on both databases.
func testUsersWhere(t *testing.T, s store.Store) {
	ctx := t.Context()
	mk := func(id, email, alias, ext string, disabled bool, minute int, emails ...string) {
		u := store.User{ID: id, Email: email, Alias: alias, ExternalID: ext, Disabled: disabled, Role: "internal_user",
			CreatedAt: at(minute), UpdatedAt: at(minute)}
		if len(emails) > 0 {
			u.Directory = &store.DirectoryProfile{}
			for _, e := range emails {
				u.Directory.Emails = append(u.Directory.Emails, store.DirectoryEmail{Value: e, Type: "work"})
			}
		}
		require.NoError(t, s.CreateUser(ctx, &u))
	}
	mk("a", "Ada@Example.com", "Ada Lovelace", "Ext-A", false, 0, "ada@Work.example", "a.l@home.example")
	mk("b", "bob@example.org", "Bob", "ext-b", true, 10)
	mk("c", "carol@sub.example.com", "", "", false, 20, "carol@work.example")
	mk("d", "", "Dave (no mail)", "ext-d", false, 30)

	cases := []struct {
		name string
		c    *store.Cond
		want []string
	}{
		{"email eq folds case", leaf(store.UserFieldEmail, store.CondEq, "ADA@example.COM"), []string{"a"}},
		{"email co", leaf(store.UserFieldEmail, store.CondCo, "EXAMPLE.com"), []string{"a", "c"}},
		{"email sw", leaf(store.UserFieldEmail, store.CondSw, "Bo"), []string{"b"}},
		{"email ew", leaf(store.UserFieldEmail, store.CondEw, ".ORG"), []string{"b"}},
		{"email pr", leaf(store.UserFieldEmail, store.CondPr, nil), []string{"a", "b", "c"}},
		{"email ne", leaf(store.UserFieldEmail, store.CondNe, "bob@example.org"), []string{"a", "c", "d"}},
		{"email eq no match", leaf(store.UserFieldEmail, store.CondEq, "ada@example"), []string{}},
		{"email sw longer than value", leaf(store.UserFieldEmail, store.CondSw, "ada@example.com.x"), []string{}},
		{"externalId is case-exact", leaf(store.UserFieldExternalID, store.CondEq, "ext-a"), []string{}},
		{"externalId eq", leaf(store.UserFieldExternalID, store.CondEq, "Ext-A"), []string{"a"}},
		{"externalId co exact case", leaf(store.UserFieldExternalID, store.CondCo, "ext-"), []string{"b", "d"}},
		{"externalId pr", leaf(store.UserFieldExternalID, store.CondPr, nil), []string{"a", "b", "d"}},
		{"id eq", leaf(store.UserFieldID, store.CondEq, "c"), []string{"c"}},
		{"alias co folds", leaf(store.UserFieldAlias, store.CondCo, "LOVE"), []string{"a"}},
		{"alias pr", leaf(store.UserFieldAlias, store.CondPr, nil), []string{"a", "b", "d"}},
		{"alias with LIKE wildcards is literal", leaf(store.UserFieldAlias, store.CondCo, "%"), []string{}},
		{"alias with parenthesis", leaf(store.UserFieldAlias, store.CondEw, "(no mail)"), []string{"d"}},
		{"emails eq primary", leaf(store.UserFieldEmails, store.CondEq, "bob@EXAMPLE.org"), []string{"b"}},
		{"emails eq listed", leaf(store.UserFieldEmails, store.CondEq, "ADA@work.example"), []string{"a"}},
		{"emails eq is whole address", leaf(store.UserFieldEmails, store.CondEq, "work.example"), []string{}},
		{"emails sw listed", leaf(store.UserFieldEmails, store.CondSw, "a.l@"), []string{"a"}},
		{"emails ew listed", leaf(store.UserFieldEmails, store.CondEw, "@work.example"), []string{"a", "c"}},
		{"emails co", leaf(store.UserFieldEmails, store.CondCo, "home"), []string{"a"}},
		{"emails pr", leaf(store.UserFieldEmails, store.CondPr, nil), []string{"a", "b", "c"}},
		{"emails separator never matches", leaf(store.UserFieldEmails, store.CondCo, "\n"), []string{}},
		{"disabled eq", leaf(store.UserFieldDisabled, store.CondEq, true), []string{"b"}},
		{"disabled ne", leaf(store.UserFieldDisabled, store.CondNe, true), []string{"a", "c", "d"}},
		{"updated gt", leaf(store.UserFieldUpdatedAt, store.CondGt, at(10)), []string{"c", "d"}},
		{"updated ge", leaf(store.UserFieldUpdatedAt, store.CondGe, at(10)), []string{"b", "c", "d"}},
		{"updated lt", leaf(store.UserFieldUpdatedAt, store.CondLt, at(10)), []string{"a"}},
		{"updated le", leaf(store.UserFieldUpdatedAt, store.CondLe, at(10)), []string{"a", "b"}},
		{"created eq", leaf(store.UserFieldCreatedAt, store.CondEq, at(20)), []string{"c"}},
		{"and", store.And(leaf(store.UserFieldEmail, store.CondCo, "example"), leaf(store.UserFieldDisabled, store.CondEq, false)),
			[]string{"a", "c"}},
		{"or", &store.Cond{Op: store.CondOr, Sub: []store.Cond{*leaf(store.UserFieldID, store.CondEq, "a"), *leaf(store.UserFieldID, store.CondEq, "d")}},
			[]string{"a", "d"}},
		{"not", &store.Cond{Op: store.CondNot, Sub: []store.Cond{*leaf(store.UserFieldAlias, store.CondPr, nil)}}, []string{"c"}},
		{"injection attempt is a value", leaf(store.UserFieldEmail, store.CondEq, "' OR 1=1 --"), []string{}},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, whereUserIDs(t, s, tc.c), tc.name)
	}

	// Conditions combine with the other filters and paginate.
	users, total, err := s.ListUsers(ctx, store.UserFilter{Role: "internal_user", Where: leaf(store.UserFieldEmails, store.CondPr, nil),
		Page: store.Page{Offset: 1, Limit: 1}})
	require.NoError(t, err)
	require.EqualValues(t, 3, total)
	require.Len(t, users, 1)
	require.Equal(t, "b", users[0].ID)

	// Malformed conditions are errors, never a wider match.
	for name, c := range map[string]*store.Cond{
		"unknown field":      leaf("password_hash", store.CondEq, "x"),
		"co on a boolean":    leaf(store.UserFieldDisabled, store.CondCo, true),
		"string for bool":    leaf(store.UserFieldDisabled, store.CondEq, "true"),
		"string for time":    leaf(store.UserFieldUpdatedAt, store.CondGt, "2026-01-01"),
		"sw on a time":       leaf(store.UserFieldUpdatedAt, store.CondSw, at(1)),
		"and with one child": {Op: store.CondAnd, Sub: []store.Cond{*leaf(store.UserFieldID, store.CondEq, "a")}},
		"gt on emails":       leaf(store.UserFieldEmails, store.CondGt, "a"),
		"unknown operator":   leaf(store.UserFieldID, "regex", "a"),
	} {
		_, _, err := s.ListUsers(ctx, store.UserFilter{Where: c})
		require.Error(t, err, name)
	}
	deep := leaf(store.UserFieldID, store.CondEq, "a")
	for range 40 {
		deep = &store.Cond{Op: store.CondNot, Sub: []store.Cond{*deep}}
	}
	_, _, err = s.ListUsers(ctx, store.UserFilter{Where: deep})
	require.Error(t, err, "nesting is bounded")
}

// testTeamsWhere: group filters, including membership.
func testTeamsWhere(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, tm := range []store.Team{
		{ID: "t1", Alias: "LLM Admins", ExternalID: "obj-1", DirectoryManaged: true},
		{ID: "t2", Alias: "llm users", ExternalID: "obj-2", DirectoryManaged: true},
		{ID: "t3", Alias: "Hand made"},
	} {
		tm.CreatedAt, tm.UpdatedAt = at(i), at(i)
		require.NoError(t, s.CreateTeam(ctx, &tm))
	}
	mkUser(t, s, "u1", "u1@example.com", at(0))
	require.NoError(t, s.PutMembership(ctx, store.Membership{TeamID: "t2", UserID: "u1", Role: "user", CreatedAt: at(0)}))
	require.NoError(t, s.PutMembership(ctx, store.Membership{TeamID: "t3", UserID: "u1", Role: "user", CreatedAt: at(0)}))
	ids := func(c *store.Cond) []string {
		teams, total, err := s.ListTeams(ctx, store.TeamFilter{Where: c, Page: store.Page{Limit: 100}})
		require.NoError(t, err)
		out := []string{}
		for _, tm := range teams {
			out = append(out, tm.ID)
		}
		require.EqualValues(t, len(out), total)
		return out
	}
	managed := leaf(store.TeamFieldDirectoryManaged, store.CondEq, true)
	require.Equal(t, []string{"t1", "t2"}, ids(managed))
	require.Equal(t, []string{"t2"}, ids(store.And(managed, leaf(store.TeamFieldAlias, store.CondEq, "LLM USERS"))))
	require.Equal(t, []string{"t1", "t2"}, ids(store.And(managed, leaf(store.TeamFieldAlias, store.CondSw, "llm"))))
	require.Equal(t, []string{"t1"}, ids(leaf(store.TeamFieldExternalID, store.CondEq, "obj-1")))
	require.Equal(t, []string{"t2", "t3"}, ids(leaf(store.TeamFieldMember, store.CondEq, "u1")))
	require.Equal(t, []string{"t2"}, ids(store.And(managed, leaf(store.TeamFieldMember, store.CondEq, "u1"))))
	require.Equal(t, []string{"t2", "t3"}, ids(leaf(store.TeamFieldMember, store.CondPr, nil)))
	require.Equal(t, []string{"t1"}, ids(store.And(leaf(store.TeamFieldID, store.CondEq, "t1"),
		&store.Cond{Op: store.CondNot, Sub: []store.Cond{*leaf(store.TeamFieldMember, store.CondEq, "u1")}})))
	require.Equal(t, []string{"t3"}, ids(leaf(store.TeamFieldUpdatedAt, store.CondGe, at(2))))
	teams, _, err := s.ListTeams(ctx, store.TeamFilter{UserID: "u1", Where: managed})
	require.NoError(t, err)
	require.Len(t, teams, 1, "conditions combine with the user filter")
	_, _, err = s.ListTeams(ctx, store.TeamFilter{Where: leaf(store.TeamFieldMember, store.CondCo, "u")})
	require.Error(t, err, "member takes eq and pr only")
}

// testKeysByType and testAuditPrefix cover the listing filters SCIM's
// admin page uses.
func testKeysByType(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, kt := range []string{"scim", "", "scim", "llm_api"} {
		k := store.Key{Hash: string(rune('a'+i)) + "-hash", KeyType: kt, CreatedAt: at(i), UpdatedAt: at(i)}
		require.NoError(t, s.CreateKey(ctx, &k))
	}
	keys, total, err := s.ListKeys(ctx, store.KeyFilter{KeyType: "scim"})
	require.NoError(t, err)
	require.EqualValues(t, 2, total)
	require.Equal(t, "a-hash", keys[0].Hash)
	require.Equal(t, "c-hash", keys[1].Hash)
}

func testAuditPrefix(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, a := range []string{"scim.user.created", "user.created", "scim.group.updated", "scimx.other", "scim_token.created", "SCIM.upper"} {
		require.NoError(t, s.AppendAudit(ctx, &store.AuditEvent{At: at(i), Action: a, ActorID: "x"}))
	}
	rows, total, err := s.ListAudit(ctx, store.AuditFilter{ActionPrefix: "scim."})
	require.NoError(t, err)
	require.EqualValues(t, 2, total)
	require.Equal(t, "scim.user.created", rows[0].Action)
	require.Equal(t, "scim.group.updated", rows[1].Action)
	_, total, err = s.ListAudit(ctx, store.AuditFilter{ActionPrefix: "scim_"})
	require.NoError(t, err)
	require.EqualValues(t, 1, total, "_ is literal, not LIKE's any-character")
}
