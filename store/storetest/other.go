package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

func testSigningKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	mk := func(kid string, created, notAfter, verifyUntil time.Time) store.SigningKey {
		k := store.SigningKey{KID: kid, Algorithm: "ES256", PublicPEM: "-----BEGIN PUBLIC KEY-----\n" + kid,
			PrivateSealed: []byte{0, 1, 2, 255, byte(len(kid))}, CreatedAt: created, NotAfter: notAfter, VerifyUntil: verifyUntil}
		require.NoError(t, s.CreateSigningKey(ctx, &k))
		return k
	}
	mk("gone", at(0), at(10), at(20))
	older := mk("older", at(10), at(30), at(40))
	newest := mk("newest", at(30), at(60), at(70))

	keys, err := s.ListSigningKeys(ctx, at(25))
	require.NoError(t, err)
	require.Equal(t, []store.SigningKey{newest, older}, keys, "verifying keys, newest first")

	keys, err = s.ListSigningKeys(ctx, at(40))
	require.NoError(t, err)
	require.Equal(t, []store.SigningKey{newest}, keys, "VerifyUntil is exclusive")

	updated, err := s.UpdateSigningKey(ctx, "newest", func(k *store.SigningKey) error {
		k.NotAfter = at(35)
		k.VerifyUntil = at(45)
		k.PublicPEM = "ignored"
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, at(35), updated.NotAfter)
	require.Equal(t, newest.PublicPEM, updated.PublicPEM, "key material never changes")
	keys, err = s.ListSigningKeys(ctx, at(44))
	require.NoError(t, err)
	require.Equal(t, []store.SigningKey{updated}, keys)
}

func testLoginAttempts(t *testing.T, s store.Store) {
	ctx := t.Context()
	const a, b = "account:alice@example.com", "ip:192.0.2.1"
	for _, m := range []int{0, 1, 2} {
		require.NoError(t, s.RecordLoginFailure(ctx, a, at(m)))
	}
	require.NoError(t, s.RecordLoginFailure(ctx, b, at(1)))

	n, oldest, err := s.CountLoginFailures(ctx, a, at(0))
	require.NoError(t, err)
	require.EqualValues(t, 3, n)
	require.Equal(t, at(0), oldest)

	n, oldest, err = s.CountLoginFailures(ctx, a, at(1))
	require.NoError(t, err)
	require.EqualValues(t, 2, n, "since is inclusive")
	require.Equal(t, at(1), oldest)

	n, oldest, err = s.CountLoginFailures(ctx, a, at(3))
	require.NoError(t, err)
	require.Zero(t, n)
	require.True(t, oldest.IsZero())

	require.NoError(t, s.ClearLoginFailures(ctx, a))
	n, _, err = s.CountLoginFailures(ctx, a, at(-100))
	require.NoError(t, err)
	require.Zero(t, n)
	n, oldest, err = s.CountLoginFailures(ctx, b, at(-100))
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "other subjects are untouched")
	require.Equal(t, at(1), oldest)
	require.NoError(t, s.ClearLoginFailures(ctx, "unknown"))
}

func testTakeLoginAttempt(t *testing.T, s store.Store) {
	ctx := t.Context()
	const a, b = "user:alice", "user:bob"
	since := at(-15)
	for i, want := range []bool{true, true, true, false, false} {
		w, err := s.TakeLoginAttempt(ctx, a, at(i), since, 3)
		require.NoError(t, err)
		require.Equal(t, want, w.Taken, "attempt %d", i)
		require.EqualValues(t, min(i+1, 3), w.Count, "attempt %d", i)
		require.Equal(t, at(0), w.Oldest)
	}
	w, err := s.TakeLoginAttempt(ctx, b, at(4), since, 3)
	require.NoError(t, err)
	require.True(t, w.Taken, "subjects have separate windows")
	require.EqualValues(t, 1, w.Count)

	// once the oldest attempts leave the window, attempts are taken again
	// and the expired ones are forgotten
	w, err = s.TakeLoginAttempt(ctx, a, at(16), at(1), 3)
	require.NoError(t, err)
	require.True(t, w.Taken)
	require.EqualValues(t, 3, w.Count)
	require.Equal(t, at(1), w.Oldest)
	n, _, err := s.CountLoginFailures(ctx, a, at(-100))
	require.NoError(t, err)
	require.EqualValues(t, 3, n, "attempts before the window are deleted")

	// taken attempts are what CountLoginFailures and ClearLoginFailures see
	require.NoError(t, s.ClearLoginFailures(ctx, a))
	w, err = s.TakeLoginAttempt(ctx, a, at(17), at(1), 3)
	require.NoError(t, err)
	require.True(t, w.Taken)
	require.EqualValues(t, 1, w.Count)
}

// testTakeLoginAttemptConcurrent is the property lockout rests on: a
// burst of takers, each on its own connection where the store has
// several, gets exactly limit attempts.
func testTakeLoginAttemptConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n, limit = 100, 5
	var taken atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			w, err := s.TakeLoginAttempt(ctx, "user:burst", at(0).Add(time.Duration(i)*time.Millisecond), at(-15), limit)
			if err != nil {
				errs <- err
				return
			}
			if w.Taken {
				taken.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, limit, taken.Load())
	c, _, err := s.CountLoginFailures(ctx, "user:burst", at(-15))
	require.NoError(t, err)
	require.EqualValues(t, limit, c)
}

func testAudit(t *testing.T, s store.Store) {
	ctx := t.Context()
	var events []store.AuditEvent
	for i := range 30 {
		e := store.AuditEvent{
			At: at(i / 2), Action: "user.created", ActorID: "admin", ActorRole: "proxy_admin", TargetType: "user",
			TargetID: fmt.Sprintf("u%02d", i%5), ClientIP: "192.0.2.7", RequestID: fmt.Sprintf("req-%d", i),
			After: map[string]any{"i": float64(i)},
		}
		if i%3 == 0 {
			e.Action, e.ActorID = "key.deleted", "bob"
			e.Before = map[string]any{"alias": "x", "models": []any{"a"}}
			e.After = nil
		}
		require.NoError(t, s.AppendAudit(ctx, &e))
		require.NotZero(t, e.ID)
		if len(events) > 0 {
			require.Greater(t, e.ID, events[len(events)-1].ID, "ids increase")
		}
		events = append(events, e)
	}

	page, total, err := s.ListAudit(ctx, store.AuditFilter{})
	require.NoError(t, err)
	require.EqualValues(t, 30, total)
	require.Equal(t, events[:25], page, "oldest first, full records")

	page, total, err = s.ListAudit(ctx, store.AuditFilter{Page: store.Page{Offset: 28, Limit: 10}})
	require.NoError(t, err)
	require.EqualValues(t, 30, total)
	require.Equal(t, events[28:], page)

	page, total, err = s.ListAudit(ctx, store.AuditFilter{Action: "key.deleted"})
	require.NoError(t, err)
	require.EqualValues(t, 10, total)
	require.Equal(t, events[3], page[1])

	_, total, err = s.ListAudit(ctx, store.AuditFilter{ActorID: "admin"})
	require.NoError(t, err)
	require.EqualValues(t, 20, total)

	page, total, err = s.ListAudit(ctx, store.AuditFilter{TargetID: "u01", ActorID: "admin"})
	require.NoError(t, err)
	require.EqualValues(t, 4, total) // i = 1, 11, 16, 26 (6 and 21 are bob's)
	require.Equal(t, []store.AuditEvent{events[1], events[11], events[16], events[26]}, page)

	page, total, err = s.ListAudit(ctx, store.AuditFilter{Since: ptr(at(2)), Until: ptr(at(4))})
	require.NoError(t, err)
	require.EqualValues(t, 4, total, "since inclusive, until exclusive")
	require.Equal(t, events[4:8], page)
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	noop := func(any) error { return nil }
	checks := map[string]error{}
	_, checks["GetUser"] = s.GetUser(ctx, "x")
	_, checks["GetUserByEmail"] = s.GetUserByEmail(ctx, "x@example.com")
	_, checks["GetUserBySSO"] = s.GetUserBySSO(ctx, "iss", "sub")
	_, checks["UpdateUser"] = s.UpdateUser(ctx, "x", func(u *store.User) error { return noop(u) })
	checks["DeleteUser"] = s.DeleteUser(ctx, "x")
	_, checks["GetTeam"] = s.GetTeam(ctx, "x")
	_, checks["UpdateTeam"] = s.UpdateTeam(ctx, "x", func(tm *store.Team) error { return noop(tm) })
	checks["DeleteTeam"] = s.DeleteTeam(ctx, "x")
	_, checks["GetMembership"] = s.GetMembership(ctx, "x", "y")
	checks["DeleteMembership"] = s.DeleteMembership(ctx, "x", "y")
	_, checks["GetKey"] = s.GetKey(ctx, "x")
	_, checks["GetKeyByAlias"] = s.GetKeyByAlias(ctx, "x", "x")
	_, checks["UpdateKey"] = s.UpdateKey(ctx, "x", func(k *store.Key) error { return noop(k) })
	_, checks["ReplaceKeyHash"] = s.ReplaceKeyHash(ctx, "x", "y", func(k *store.Key) error { return noop(k) })
	checks["DeleteKey"] = s.DeleteKey(ctx, "x")
	_, checks["GetInvitation"] = s.GetInvitation(ctx, "x")
	_, checks["ConsumeInvitation"] = s.ConsumeInvitation(ctx, "x", at(0), "y")
	_, checks["UpdateInvitation"] = s.UpdateInvitation(ctx, "x", func(i *store.Invitation) error { return noop(i) })
	checks["DeleteInvitation"] = s.DeleteInvitation(ctx, "x")
	_, checks["GetSession"] = s.GetSession(ctx, "x")
	checks["RevokeSession"] = s.RevokeSession(ctx, "x", at(0))
	_, checks["UpdateSigningKey"] = s.UpdateSigningKey(ctx, "x", func(k *store.SigningKey) error { return noop(k) })
	for name, err := range checks {
		require.ErrorIs(t, err, store.ErrNotFound, name)
		require.NotErrorIs(t, err, store.ErrConflict, name)
	}
}

func testConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := mkUser(t, s, "u", "", at(0))
	tm := mkTeam(t, s, "t", at(0))
	k := mkKey(t, s, "k", "u", "", at(0))
	inv := mkInvitation(t, s, "i", "u", at(0), at(10))
	x := mkSession(t, s, "s", "u", "", at(0), at(10))
	sk := store.SigningKey{KID: "kid", Algorithm: "ES256", CreatedAt: at(0), NotAfter: at(1), VerifyUntil: at(2)}
	require.NoError(t, s.CreateSigningKey(ctx, &sk))
	e := store.SpendEntry{RequestID: "r", CreatedAt: at(0)}
	require.NoError(t, s.RecordSpend(ctx, e))

	checks := map[string]error{
		"CreateUser":       s.CreateUser(ctx, &u),
		"CreateTeam":       s.CreateTeam(ctx, &tm),
		"CreateKey":        s.CreateKey(ctx, &k),
		"CreateInvitation": s.CreateInvitation(ctx, &inv),
		"CreateSession":    s.CreateSession(ctx, &x),
		"CreateSigningKey": s.CreateSigningKey(ctx, &sk),
		"RecordSpend":      s.RecordSpend(ctx, e),
	}
	for name, err := range checks {
		require.ErrorIs(t, err, store.ErrConflict, name)
		require.NotErrorIs(t, err, store.ErrNotFound, name)
	}
	got, err := s.GetInvitation(ctx, "i")
	require.NoError(t, err)
	require.Equal(t, inv, got, "a duplicate invitation does not delete the original")
}

func testUpdateFuncError(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	mkTeam(t, s, "t", at(0))
	mkKey(t, s, "k", "", "", at(0))
	mkInvitation(t, s, "i", "u", at(0), at(10))
	sk := store.SigningKey{KID: "kid", CreatedAt: at(0), NotAfter: at(1), VerifyUntil: at(2)}
	require.NoError(t, s.CreateSigningKey(ctx, &sk))

	_, err := s.UpdateUser(ctx, "u", func(u *store.User) error { u.Alias = "x"; return errBoom })
	require.Equal(t, errBoom, err, "UpdateUser returns fn's error unchanged")
	_, err = s.UpdateTeam(ctx, "t", func(tm *store.Team) error { tm.Alias = "x"; return errBoom })
	require.Equal(t, errBoom, err)
	_, err = s.UpdateKey(ctx, "k", func(k *store.Key) error { k.Alias = "x"; return errBoom })
	require.Equal(t, errBoom, err)
	_, err = s.ReplaceKeyHash(ctx, "k", "k2", func(k *store.Key) error { return errBoom })
	require.Equal(t, errBoom, err)
	_, err = s.UpdateInvitation(ctx, "i", func(i *store.Invitation) error { i.UpdatedBy = "x"; return errBoom })
	require.Equal(t, errBoom, err)
	_, err = s.UpdateSigningKey(ctx, "kid", func(k *store.SigningKey) error { k.NotAfter = at(9); return errBoom })
	require.Equal(t, errBoom, err)

	u, err := s.GetUser(ctx, "u")
	require.NoError(t, err)
	require.Empty(t, u.Alias)
	tm, err := s.GetTeam(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, "t-alias", tm.Alias)
	k, err := s.GetKey(ctx, "k")
	require.NoError(t, err)
	require.Empty(t, k.Alias)
	_, err = s.GetKey(ctx, "k2")
	require.ErrorIs(t, err, store.ErrNotFound)
	i, err := s.GetInvitation(ctx, "i")
	require.NoError(t, err)
	require.Equal(t, "admin", i.UpdatedBy)
	keys, err := s.ListSigningKeys(ctx, at(0))
	require.NoError(t, err)
	require.Equal(t, at(1), keys[0].NotAfter)
}
