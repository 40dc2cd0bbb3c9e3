package storetest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

func testUsersCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := store.User{
		ID: "u1", Email: "Alice@Example.com", Alias: "Alice", Role: "proxy_admin",
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA", Models: []string{"gpt-4o", "claude"},
		MaxBudget: ptr(12.5), BudgetDuration: "30d", BudgetResetAt: ptr(at(60 * 24)), Spend: 1.25,
		TPMLimit: ptr(int64(1000)), RPMLimit: ptr(int64(10)),
		Metadata:  map[string]any{"team": "x", "n": 1.5, "ok": true, "nested": map[string]any{"a": []any{"b"}}},
		SSOIssuer: "https://idp.example", SSOSubject: "sub-1", Disabled: true,
		CreatedAt: at(0), UpdatedAt: at(1),
	}
	want := u
	require.NoError(t, s.CreateUser(ctx, &u))
	require.Equal(t, want, u, "CreateUser must not change an already normalised record")

	got, err := s.GetUser(ctx, "u1")
	require.NoError(t, err)
	require.Equal(t, want, got)

	got, err = s.GetUserByEmail(ctx, "aLiCe@eXaMpLe.COM")
	require.NoError(t, err)
	require.Equal(t, "u1", got.ID)
	require.Equal(t, "Alice@Example.com", got.Email, "e-mail keeps its original case")

	got, err = s.GetUserBySSO(ctx, "https://idp.example", "sub-1")
	require.NoError(t, err)
	require.Equal(t, "u1", got.ID)
	_, err = s.GetUserBySSO(ctx, "https://other.example", "sub-1")
	require.ErrorIs(t, err, store.ErrNotFound)

	// nil stays nil, empty stays empty, zero values are written.
	updated, err := s.UpdateUser(ctx, "u1", func(u *store.User) error {
		u.ID = "changed" // ignored: the id cannot change
		u.Email = "alice@new.example"
		u.Models = []string{}
		u.Metadata = nil
		u.MaxBudget = nil
		u.TPMLimit = nil
		u.BudgetResetAt = nil
		u.Disabled = false
		u.Spend = 0
		u.UpdatedAt = at(5)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, "u1", updated.ID)
	got, err = s.GetUser(ctx, "u1")
	require.NoError(t, err)
	require.Equal(t, updated, got)
	require.Equal(t, []string{}, got.Models)
	require.Nil(t, got.Metadata)
	require.Nil(t, got.MaxBudget)
	require.Nil(t, got.TPMLimit)
	require.Equal(t, ptr(int64(10)), got.RPMLimit)
	require.Nil(t, got.BudgetResetAt)
	require.False(t, got.Disabled)
	require.Zero(t, got.Spend)
	require.Equal(t, at(5), got.UpdatedAt)
	require.Equal(t, at(0), got.CreatedAt)
	_, err = s.GetUser(ctx, "changed")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetUserByEmail(ctx, "alice@example.com")
	require.ErrorIs(t, err, store.ErrNotFound, "the old e-mail no longer matches")
	got, err = s.GetUserByEmail(ctx, "ALICE@NEW.EXAMPLE")
	require.NoError(t, err)
	require.Equal(t, "u1", got.ID)

	require.NoError(t, s.DeleteUser(ctx, "u1"))
	_, err = s.GetUser(ctx, "u1")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteUser(ctx, "u1"), store.ErrNotFound)
}

func testUsersEmailUnique(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "a", "Alice@x.example", at(0))
	dup := store.User{ID: "b", Email: "alice@X.EXAMPLE", CreatedAt: at(1), UpdatedAt: at(1)}
	require.ErrorIs(t, s.CreateUser(ctx, &dup), store.ErrConflict)
	_, err := s.GetUser(ctx, "b")
	require.ErrorIs(t, err, store.ErrNotFound, "a failed create leaves nothing")

	// Users without e-mail do not collide.
	mkUser(t, s, "n1", "", at(2))
	mkUser(t, s, "n2", "", at(3))
	_, err = s.GetUserByEmail(ctx, "")
	require.ErrorIs(t, err, store.ErrNotFound, "an empty e-mail matches nobody")

	mkUser(t, s, "c", "carol@x.example", at(4))
	_, err = s.UpdateUser(ctx, "c", func(u *store.User) error { u.Email = "ALICE@x.example"; u.Alias = "lost"; return nil })
	require.ErrorIs(t, err, store.ErrConflict)
	c, err := s.GetUser(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, "carol@x.example", c.Email, "a failed update writes nothing")
	require.Empty(t, c.Alias)

	// Changing only the case of one's own e-mail is fine.
	_, err = s.UpdateUser(ctx, "a", func(u *store.User) error { u.Email = "ALICE@x.example"; return nil })
	require.NoError(t, err)
	// Once deleted, the address is free again.
	require.NoError(t, s.DeleteUser(ctx, "a"))
	mkUser(t, s, "d", "alice@x.example", at(5))
}

func testUsersSSOUnique(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := store.User{ID: "a", SSOIssuer: "iss1", SSOSubject: "sub", CreatedAt: at(0), UpdatedAt: at(0)}
	require.NoError(t, s.CreateUser(ctx, &u))
	dup := store.User{ID: "b", SSOIssuer: "iss1", SSOSubject: "sub", CreatedAt: at(1), UpdatedAt: at(1)}
	require.ErrorIs(t, s.CreateUser(ctx, &dup), store.ErrConflict)
	other := store.User{ID: "c", SSOIssuer: "iss2", SSOSubject: "sub", CreatedAt: at(2), UpdatedAt: at(2)}
	require.NoError(t, s.CreateUser(ctx, &other), "same subject at another issuer is another person")
	for _, id := range []string{"e1", "e2"} {
		require.NoError(t, s.CreateUser(ctx, &store.User{ID: id, SSOIssuer: "iss1", CreatedAt: at(3), UpdatedAt: at(3)}))
	}
	_, err := s.GetUserBySSO(ctx, "iss1", "")
	require.ErrorIs(t, err, store.ErrNotFound)
	got, err := s.GetUserBySSO(ctx, "iss2", "sub")
	require.NoError(t, err)
	require.Equal(t, "c", got.ID)
}

func testUsersList(t *testing.T, s store.Store) {
	ctx := t.Context()
	// 30 users; pairs share a creation time so the id breaks ties. Ids are
	// created in reverse so insertion order cannot fake the ordering.
	var want []string
	for i := 29; i >= 0; i-- {
		id := fmt.Sprintf("user-%02d", i)
		u := store.User{ID: id, Email: fmt.Sprintf("User%02d@Example.com", i), Role: "internal_user",
			SSOSubject: fmt.Sprintf("sub-%02d", i), CreatedAt: at(i / 2), UpdatedAt: at(i / 2)}
		if i%3 == 0 {
			u.Role = "proxy_admin"
		}
		require.NoError(t, s.CreateUser(ctx, &u))
	}
	for i := range 30 {
		want = append(want, fmt.Sprintf("user-%02d", i))
	}
	odd := store.User{ID: "odd", Email: "a_b%c@weird.example", CreatedAt: at(100), UpdatedAt: at(100)}
	require.NoError(t, s.CreateUser(ctx, &odd))
	other := store.User{ID: "other", Email: "axbyc@weird.example", CreatedAt: at(101), UpdatedAt: at(101)}
	require.NoError(t, s.CreateUser(ctx, &other))
	want = append(want, "odd", "other")

	page, total, err := s.ListUsers(ctx, store.UserFilter{})
	require.NoError(t, err)
	require.EqualValues(t, 32, total)
	require.Equal(t, want[:25], userIDs(page), "default page is 25, ordered by creation then id")

	page, total, err = s.ListUsers(ctx, store.UserFilter{Page: store.Page{Offset: 25, Limit: 10}})
	require.NoError(t, err)
	require.EqualValues(t, 32, total)
	require.Equal(t, want[25:], userIDs(page))

	page, total, err = s.ListUsers(ctx, store.UserFilter{Page: store.Page{Offset: 40, Limit: 10}})
	require.NoError(t, err)
	require.EqualValues(t, 32, total)
	require.Empty(t, page)

	page, _, err = s.ListUsers(ctx, store.UserFilter{Page: store.Page{Limit: 5000}})
	require.NoError(t, err)
	require.Len(t, page, 32, "a huge limit is capped, not rejected")

	page, total, err = s.ListUsers(ctx, store.UserFilter{Role: "proxy_admin", Page: store.Page{Limit: 3}})
	require.NoError(t, err)
	require.EqualValues(t, 10, total)
	require.Equal(t, []string{"user-00", "user-03", "user-06"}, userIDs(page))

	page, total, err = s.ListUsers(ctx, store.UserFilter{UserIDs: []string{"user-05", "user-01", "nope"}})
	require.NoError(t, err)
	require.EqualValues(t, 2, total)
	require.Equal(t, []string{"user-01", "user-05"}, userIDs(page))

	page, total, err = s.ListUsers(ctx, store.UserFilter{EmailContains: "ER1"})
	require.NoError(t, err)
	require.EqualValues(t, 10, total, "case-insensitive substring")
	require.Equal(t, "user-10", page[0].ID)

	page, total, err = s.ListUsers(ctx, store.UserFilter{EmailContains: "A_B%C"})
	require.NoError(t, err)
	require.EqualValues(t, 1, total, "LIKE wildcards in the filter are literal")
	require.Equal(t, []string{"odd"}, userIDs(page))

	page, _, err = s.ListUsers(ctx, store.UserFilter{SSOSubjects: []string{"sub-07", "sub-08"}})
	require.NoError(t, err)
	require.Equal(t, []string{"user-07", "user-08"}, userIDs(page))

	mkTeam(t, s, "t1", at(0))
	mkTeam(t, s, "t2", at(0))
	mkMember(t, s, "t1", "user-04", at(1))
	mkMember(t, s, "t1", "user-02", at(2))
	mkMember(t, s, "t2", "user-03", at(2))
	page, total, err = s.ListUsers(ctx, store.UserFilter{TeamID: "t1"})
	require.NoError(t, err)
	require.EqualValues(t, 2, total)
	require.Equal(t, []string{"user-02", "user-04"}, userIDs(page))

	page, total, err = s.ListUsers(ctx, store.UserFilter{TeamID: "t1", Role: "proxy_admin"})
	require.NoError(t, err)
	require.EqualValues(t, 0, total, "filters combine with AND")
	require.Empty(t, page)
}

func testUsersDeleteCascade(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"a", "b"} {
		mkUser(t, s, id, id+"@x.example", at(0))
		mkTeam(t, s, "team-"+id, at(0))
		mkMember(t, s, "team-a", id, at(1))
		mkMember(t, s, "team-"+id, id, at(1))
		mkKey(t, s, "key1-"+id, id, "", at(1))
		mkKey(t, s, "key2-"+id, id, "team-a", at(2))
		mkInvitation(t, s, "inv-"+id, id, at(1), at(60))
		mkSession(t, s, "sess-"+id, id, "", at(1), at(60))
	}
	require.NoError(t, s.RecordSpend(ctx, store.SpendEntry{RequestID: "r1", KeyHash: "key1-a", UserID: "a", Spend: 1, CreatedAt: at(3)}))

	require.NoError(t, s.DeleteUser(ctx, "a"))

	_, err := s.GetUser(ctx, "a")
	require.ErrorIs(t, err, store.ErrNotFound)
	for _, h := range []string{"key1-a", "key2-a"} {
		_, err = s.GetKey(ctx, h)
		require.ErrorIs(t, err, store.ErrNotFound, "key %s", h)
	}
	_, err = s.GetInvitation(ctx, "inv-a")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetSession(ctx, "sess-a")
	require.ErrorIs(t, err, store.ErrNotFound)
	ms, err := s.ListMembershipsByUser(ctx, "a")
	require.NoError(t, err)
	require.Empty(t, ms)
	_, err = s.GetTeam(ctx, "team-a")
	require.NoError(t, err, "teams outlive their members")

	// b is untouched.
	_, err = s.GetUser(ctx, "b")
	require.NoError(t, err)
	for _, h := range []string{"key1-b", "key2-b"} {
		_, err = s.GetKey(ctx, h)
		require.NoError(t, err)
	}
	_, err = s.GetInvitation(ctx, "inv-b")
	require.NoError(t, err)
	_, err = s.GetSession(ctx, "sess-b")
	require.NoError(t, err)
	ms, err = s.ListMembershipsByUser(ctx, "b")
	require.NoError(t, err)
	require.Len(t, ms, 2)
	ms, err = s.ListMembershipsByTeam(ctx, "team-a")
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Equal(t, "b", ms[0].UserID)
}
