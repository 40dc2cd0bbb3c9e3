package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

// testKeysAliasPerOwner: an alias is unique per owner, not across owners;
// ownerless keys share one owner ("").
func testKeysAliasPerOwner(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "ann", "ann@example.com", at(0))
	mkUser(t, s, "bo", "bo@example.com", at(0))
	for _, k := range []store.Key{{Hash: "a1", UserID: "ann", Alias: "laptop"}, {Hash: "b1", UserID: "bo", Alias: "laptop"},
		{Hash: "s1", Alias: "laptop"}} {
		k.CreatedAt, k.UpdatedAt = at(0), at(0)
		require.NoError(t, s.CreateKey(ctx, &k), k.Hash)
	}
	dup := store.Key{Hash: "a2", UserID: "ann", Alias: "laptop", CreatedAt: at(1), UpdatedAt: at(1)}
	require.ErrorIs(t, s.CreateKey(ctx, &dup), store.ErrConflict)
	svc := store.Key{Hash: "s2", Alias: "laptop", CreatedAt: at(1), UpdatedAt: at(1)}
	require.ErrorIs(t, s.CreateKey(ctx, &svc), store.ErrConflict, "ownerless keys share one owner")

	for owner, hash := range map[string]string{"ann": "a1", "bo": "b1", "": "s1"} {
		k, err := s.GetKeyByAlias(ctx, owner, "laptop")
		require.NoError(t, err, owner)
		require.Equal(t, hash, k.Hash, owner)
	}
	_, err := s.GetKeyByAlias(ctx, "nobody", "laptop")
	require.ErrorIs(t, err, store.ErrNotFound)

	// Renaming into another owner's name is fine, into one's own is not;
	// moving a key to an owner who has the name is not either.
	mkKey(t, s, "a3", "ann", "", at(2))
	_, err = s.UpdateKey(ctx, "a3", func(k *store.Key) error { k.Alias = "laptop"; return nil })
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = s.UpdateKey(ctx, "b1", func(k *store.Key) error { k.UserID = "ann"; return nil })
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = s.UpdateKey(ctx, "a3", func(k *store.Key) error { k.Alias = "desktop"; return nil })
	require.NoError(t, err)
	_, total, err := s.ListKeys(ctx, store.KeyFilter{KeyAlias: "laptop"})
	require.NoError(t, err)
	require.EqualValues(t, 3, total)
}

// testKeysOrderAndOwner: keys sort by the whitelisted columns in both
// directions (blank names and never-used keys last), and Owner matches an
// id or part of an e-mail.
func testKeysOrderAndOwner(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u-ann", "Ann.Lee@Example.com", at(0))
	mkUser(t, s, "u-bo", "bo@example.com", at(0))
	keys := []store.Key{
		{Hash: "k1", UserID: "u-ann", Alias: "beta", Spend: 2, LastActive: ptr(at(10)), CreatedAt: at(1)},
		{Hash: "k2", UserID: "u-bo", Alias: "Alpha", Spend: 5, CreatedAt: at(2)},
		{Hash: "k3", UserID: "u-ann", Alias: "", Spend: 1, LastActive: ptr(at(30)), CreatedAt: at(3)},
		{Hash: "k4", UserID: "", Alias: "gamma", Spend: 0, LastActive: ptr(at(20)), CreatedAt: at(4)},
	}
	for _, k := range keys {
		k.UpdatedAt = k.CreatedAt
		require.NoError(t, s.CreateKey(ctx, &k))
	}
	list := func(f store.KeyFilter) []string {
		t.Helper()
		ks, _, err := s.ListKeys(ctx, f)
		require.NoError(t, err)
		return keyHashes(ks)
	}
	for _, tc := range []struct {
		o    store.Order
		want []string
	}{
		{store.Order{}, []string{"k1", "k2", "k3", "k4"}},
		{store.Order{By: store.OrderCreated, Desc: true}, []string{"k4", "k3", "k2", "k1"}},
		{store.Order{By: store.OrderAlias}, []string{"k2", "k1", "k4", "k3"}},
		{store.Order{By: store.OrderAlias, Desc: true}, []string{"k4", "k1", "k2", "k3"}},
		{store.Order{By: store.OrderSpend, Desc: true}, []string{"k2", "k1", "k3", "k4"}},
		{store.Order{By: store.OrderSpend}, []string{"k4", "k3", "k1", "k2"}},
		{store.Order{By: store.OrderLastUsed, Desc: true}, []string{"k3", "k4", "k1", "k2"}},
		{store.Order{By: store.OrderLastUsed}, []string{"k1", "k4", "k3", "k2"}},
		// Not a key column, or not a column at all: the default order.
		{store.Order{By: store.OrderEmail, Desc: true}, []string{"k1", "k2", "k3", "k4"}},
		{store.Order{By: "alias; DROP TABLE api_keys", Desc: true}, []string{"k1", "k2", "k3", "k4"}},
	} {
		require.Equal(t, tc.want, list(store.KeyFilter{Order: tc.o}), "%+v", tc.o)
	}
	page, total, err := s.ListKeys(ctx, store.KeyFilter{Order: store.Order{By: store.OrderCreated, Desc: true}, Page: store.Page{Offset: 1, Limit: 2}})
	require.NoError(t, err)
	require.EqualValues(t, 4, total)
	require.Equal(t, []string{"k3", "k2"}, keyHashes(page), "pages follow the order")

	require.Equal(t, []string{"k1", "k3"}, list(store.KeyFilter{Owner: "u-ann"}))
	require.Equal(t, []string{"k1", "k3"}, list(store.KeyFilter{Owner: "ann.lee"}), "part of the e-mail, any case")
	require.Equal(t, []string{"k1", "k2", "k3"}, list(store.KeyFilter{Owner: "EXAMPLE.COM"}))
	require.Empty(t, list(store.KeyFilter{Owner: "%"}), "LIKE wildcards are literal")
	require.Empty(t, list(store.KeyFilter{Owner: "u-"}), "ids match whole")
	_, total, err = s.ListKeys(ctx, store.KeyFilter{Owner: "bo@", Order: store.Order{By: store.OrderSpend}})
	require.NoError(t, err)
	require.EqualValues(t, 1, total)
}

// testUsersOrder: users sort by e-mail (any case), role and creation.
func testUsersOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, u := range []store.User{{ID: "c", Email: "carol@example.com", Role: "proxy_admin"},
		{ID: "a", Email: "Bob@example.com", Role: "internal_user"}, {ID: "b", Email: "alice@example.com", Role: "internal_user_viewer"}} {
		u.CreatedAt, u.UpdatedAt = at(i), at(i)
		require.NoError(t, s.CreateUser(ctx, &u))
	}
	list := func(o store.Order) []string {
		t.Helper()
		us, _, err := s.ListUsers(ctx, store.UserFilter{Order: o})
		require.NoError(t, err)
		return userIDs(us)
	}
	require.Equal(t, []string{"c", "a", "b"}, list(store.Order{}))
	require.Equal(t, []string{"b", "a", "c"}, list(store.Order{By: store.OrderCreated, Desc: true}))
	require.Equal(t, []string{"b", "a", "c"}, list(store.Order{By: store.OrderEmail}))
	require.Equal(t, []string{"c", "a", "b"}, list(store.Order{By: store.OrderEmail, Desc: true}))
	require.Equal(t, []string{"a", "b", "c"}, list(store.Order{By: store.OrderRole}))
	require.Equal(t, []string{"c", "a", "b"}, list(store.Order{By: store.OrderSpend}), "not a user column: default")
	require.Equal(t, []string{"c", "a", "b"}, list(store.Order{By: "email_lower DESC --"}))
}

// testAuditNewestFirstAndActor: the log pages newest first with full
// pages, and Actor matches an id or part of the actor's e-mail.
func testAuditNewestFirstAndActor(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u-ann", "ann@example.com", at(0))
	var ids []int64
	for i := range 58 {
		actor := "u-ann"
		if i%2 == 1 {
			actor = "master"
		}
		e := store.AuditEvent{At: at(0).Add(time.Duration(i/3) * time.Second), Action: "key.created", ActorID: actor,
			TargetType: "key", TargetID: fmt.Sprintf("k%02d", i)}
		require.NoError(t, s.AppendAudit(ctx, &e))
		ids = append(ids, e.ID)
	}
	evIDs := func(es []store.AuditEvent) []int64 {
		out := make([]int64, 0, len(es))
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	newest := make([]int64, 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		newest = append(newest, ids[i])
	}
	p1, total, err := s.ListAudit(ctx, store.AuditFilter{NewestFirst: true, Page: store.Page{Limit: 50}})
	require.NoError(t, err)
	require.EqualValues(t, 58, total)
	require.Equal(t, newest[:50], evIDs(p1), "page 1 is full and newest first, ties by id")
	p2, _, err := s.ListAudit(ctx, store.AuditFilter{NewestFirst: true, Page: store.Page{Offset: 50, Limit: 50}})
	require.NoError(t, err)
	require.Equal(t, newest[50:], evIDs(p2))

	byMail, total, err := s.ListAudit(ctx, store.AuditFilter{Actor: "ANN@", NewestFirst: true})
	require.NoError(t, err)
	require.EqualValues(t, 29, total)
	for _, e := range byMail {
		require.Equal(t, "u-ann", e.ActorID)
	}
	_, total, err = s.ListAudit(ctx, store.AuditFilter{Actor: "master"})
	require.NoError(t, err)
	require.EqualValues(t, 29, total, "an id that is no user's still matches")
	_, total, err = s.ListAudit(ctx, store.AuditFilter{Actor: "_"})
	require.NoError(t, err)
	require.Zero(t, total)
}
