package storetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

func testSessionsAMR(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	x := store.Session{ID: "s-mfa", UserID: "u", Role: "proxy_admin", LoginMethod: "password", AMR: []string{"pwd", "otp", "mfa"},
		CreatedAt: at(0), ExpiresAt: at(60)}
	want := x
	require.NoError(t, s.CreateSession(ctx, &x))
	got, err := s.GetSession(ctx, "s-mfa")
	require.NoError(t, err)
	require.Equal(t, want, got)
	mkSession(t, s, "s-plain", "u", "", at(0), at(60))
	got, err = s.GetSession(ctx, "s-plain")
	require.NoError(t, err)
	require.Nil(t, got.AMR, "no methods read back as none")
}

func testTOTPLifecycle(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "u@example.com", at(0))
	_, err := s.GetTOTP(ctx, "u")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.ConfirmTOTP(ctx, "u", 10, at(1)), store.ErrNotFound)

	first := store.TOTP{UserID: "u", SecretSealed: []byte{1, 2, 3}, CreatedAt: at(0)}
	require.NoError(t, s.PutTOTP(ctx, &first))
	second := store.TOTP{UserID: "u", SecretSealed: []byte{4, 5, 6}, CreatedAt: at(1)}
	require.NoError(t, s.PutTOTP(ctx, &second), "an unconfirmed secret is replaced")
	got, err := s.GetTOTP(ctx, "u")
	require.NoError(t, err)
	require.Equal(t, []byte{4, 5, 6}, got.SecretSealed)
	require.Nil(t, got.ConfirmedAt)
	ok, err := s.UseTOTPStep(ctx, "u", 100)
	require.ErrorIs(t, err, store.ErrNotFound, "an unconfirmed secret is no factor")
	require.False(t, ok)

	require.NoError(t, s.ConfirmTOTP(ctx, "u", 100, at(2)))
	require.ErrorIs(t, s.ConfirmTOTP(ctx, "u", 101, at(3)), store.ErrConflict, "confirmed once")
	got, err = s.GetTOTP(ctx, "u")
	require.NoError(t, err)
	require.Equal(t, ptr(at(2)), got.ConfirmedAt)
	require.Equal(t, int64(100), got.LastStep)
	require.ErrorIs(t, s.PutTOTP(ctx, &store.TOTP{UserID: "u", SecretSealed: []byte{9}, CreatedAt: at(4)}), store.ErrConflict,
		"a confirmed secret is not silently replaced")

	ok, err = s.UseTOTPStep(ctx, "u", 100)
	require.NoError(t, err)
	require.False(t, ok, "the confirming code's step is used")
	ok, err = s.UseTOTPStep(ctx, "u", 99)
	require.NoError(t, err)
	require.False(t, ok, "an older step is refused")
	ok, err = s.UseTOTPStep(ctx, "u", 101)
	require.NoError(t, err)
	require.True(t, ok)

	require.NoError(t, s.DeleteTOTP(ctx, "u"))
	require.ErrorIs(t, s.DeleteTOTP(ctx, "u"), store.ErrNotFound)
}

// testTOTPConcurrentStepOnce: one code sent many times at once is
// accepted exactly once.
func testTOTPConcurrentStepOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	require.NoError(t, s.PutTOTP(ctx, &store.TOTP{UserID: "u", SecretSealed: []byte{1}, CreatedAt: at(0)}))
	require.NoError(t, s.ConfirmTOTP(ctx, "u", 1, at(0)))
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			ok, err := s.UseTOTPStep(ctx, "u", 7)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load())
}

func testPasskeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	mkUser(t, s, "v", "", at(0))
	a := store.Passkey{ID: "cred-a", UserID: "u", Name: "YubiKey", Credential: []byte(`{"k":1}`), CreatedAt: at(1)}
	want := a
	require.NoError(t, s.CreatePasskey(ctx, &a))
	require.NoError(t, s.CreatePasskey(ctx, &store.Passkey{ID: "cred-b", UserID: "u", Name: "Laptop", Credential: []byte(`{}`), CreatedAt: at(2)}))
	require.ErrorIs(t, s.CreatePasskey(ctx, &store.Passkey{ID: "cred-a", UserID: "v", Credential: []byte(`{}`), CreatedAt: at(3)}),
		store.ErrConflict, "a credential id belongs to one user")
	got, err := s.GetPasskey(ctx, "cred-a")
	require.NoError(t, err)
	require.Equal(t, want, got)
	list, err := s.ListPasskeys(ctx, "u")
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "cred-a", list[0].ID)

	used := at(5)
	up, err := s.UpdatePasskey(ctx, "cred-a", func(p *store.Passkey) error {
		p.Credential, p.LastUsedAt, p.UserID = []byte(`{"k":2}`), &used, "v"
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, "u", up.UserID, "the owner cannot change")
	got, err = s.GetPasskey(ctx, "cred-a")
	require.NoError(t, err)
	require.Equal(t, `{"k":2}`, string(got.Credential))
	require.Equal(t, ptr(used), got.LastUsedAt)
	require.Equal(t, "u", got.UserID)

	require.ErrorIs(t, s.DeletePasskey(ctx, "v", "cred-a"), store.ErrNotFound, "not v's")
	require.NoError(t, s.DeletePasskey(ctx, "u", "cred-a"))
	_, err = s.GetPasskey(ctx, "cred-a")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testRecoveryCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	require.NoError(t, s.ReplaceRecoveryCodes(ctx, "u", []string{"h1", "h2", "h3"}, at(0)))
	n, err := s.CountRecoveryCodes(ctx, "u")
	require.NoError(t, err)
	require.Equal(t, 3, n)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			ok, err := s.UseRecoveryCode(ctx, "u", "h2", at(1))
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load(), "a recovery code works once")
	ok, err := s.UseRecoveryCode(ctx, "v", "h1", at(1))
	require.NoError(t, err)
	require.False(t, ok, "another user's code")
	n, err = s.CountRecoveryCodes(ctx, "u")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.NoError(t, s.ReplaceRecoveryCodes(ctx, "u", []string{"h9"}, at(2)))
	ok, err = s.UseRecoveryCode(ctx, "u", "h1", at(3))
	require.NoError(t, err)
	require.False(t, ok, "replaced codes stop working")
	ok, err = s.UseRecoveryCode(ctx, "u", "h9", at(3))
	require.NoError(t, err)
	require.True(t, ok)
}

func testMFASummariesAndDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"a", "b", "c", "d"} {
		mkUser(t, s, id, id+"@example.com", at(0))
	}
	require.NoError(t, s.PutTOTP(ctx, &store.TOTP{UserID: "a", SecretSealed: []byte{1}, CreatedAt: at(0)}))
	require.NoError(t, s.ConfirmTOTP(ctx, "a", 1, at(0)))
	require.NoError(t, s.PutTOTP(ctx, &store.TOTP{UserID: "c", SecretSealed: []byte{1}, CreatedAt: at(0)})) // unconfirmed
	for _, id := range []string{"k1", "k2"} {
		require.NoError(t, s.CreatePasskey(ctx, &store.Passkey{ID: id, UserID: "b", Credential: []byte(`{}`), CreatedAt: at(0)}))
	}
	require.NoError(t, s.CreatePasskey(ctx, &store.Passkey{ID: "k3", UserID: "a", Credential: []byte(`{}`), CreatedAt: at(0)}))
	sums, err := s.MFASummaries(ctx, []string{"a", "b", "c", "d"})
	require.NoError(t, err)
	require.Equal(t, map[string]store.MFASummary{"a": {TOTP: true, Passkeys: 1}, "b": {Passkeys: 2}}, sums)

	require.NoError(t, s.ReplaceRecoveryCodes(ctx, "a", []string{"h"}, at(0)))
	require.NoError(t, s.CreateMFAChallenge(ctx, &store.MFAChallenge{IDHash: "ch-a", UserID: "a", Purpose: store.ChallengeLogin,
		CreatedAt: at(0), ExpiresAt: at(5)}))
	require.NoError(t, s.DeleteMFA(ctx, "a"))
	sums, err = s.MFASummaries(ctx, []string{"a", "b"})
	require.NoError(t, err)
	require.Equal(t, map[string]store.MFASummary{"b": {Passkeys: 2}}, sums)
	n, err := s.CountRecoveryCodes(ctx, "a")
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = s.GetMFAChallenge(ctx, "ch-a")
	require.ErrorIs(t, err, store.ErrNotFound, "a reset ends pending sign-ins")

	require.NoError(t, s.DeleteUser(ctx, "b"))
	_, err = s.GetPasskey(ctx, "k1")
	require.ErrorIs(t, err, store.ErrNotFound, "deleting a user deletes their passkeys")
}

func testMFAChallenges(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	c := store.MFAChallenge{IDHash: "ch1", UserID: "u", Purpose: store.ChallengeLogin, AMR: []string{"pwd"}, CreatedAt: at(0), ExpiresAt: at(5)}
	want := c
	require.NoError(t, s.CreateMFAChallenge(ctx, &c))
	got, err := s.GetMFAChallenge(ctx, "ch1")
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.NoError(t, s.SetMFAChallengeData(ctx, "ch1", `{"challenge":"x"}`))
	require.ErrorIs(t, s.SetMFAChallengeData(ctx, "nope", "x"), store.ErrNotFound)

	const n = 30
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			got, err := s.ConsumeMFAChallenge(ctx, "ch1", at(1))
			switch {
			case err == nil:
				if got.Data != `{"challenge":"x"}` || got.ConsumedAt == nil {
					t.Errorf("consumed challenge reads %+v", got)
				}
				wins.Add(1)
			case !isConflict(err):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load(), "a challenge is spent once")
	require.ErrorIs(t, s.SetMFAChallengeData(ctx, "ch1", "y"), store.ErrConflict)
	_, err = s.ConsumeMFAChallenge(ctx, "missing", at(1))
	require.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, s.CreateMFAChallenge(ctx, &store.MFAChallenge{IDHash: "ch2", Purpose: store.ChallengePasskeyLogin,
		CreatedAt: at(0), ExpiresAt: at(5)}))
	_, err = s.ConsumeMFAChallenge(ctx, "ch2", at(5))
	require.ErrorIs(t, err, store.ErrConflict, "expired at ExpiresAt")

	// Creating a challenge forgets the ones that expired before it.
	require.NoError(t, s.CreateMFAChallenge(ctx, &store.MFAChallenge{IDHash: "ch3", Purpose: store.ChallengeLogin, UserID: "u",
		CreatedAt: at(10), ExpiresAt: at(15)}))
	for _, id := range []string{"ch1", "ch2"} {
		_, err = s.GetMFAChallenge(ctx, id)
		require.ErrorIs(t, err, store.ErrNotFound, id)
	}
}

func isConflict(err error) bool { return err != nil && errors.Is(err, store.ErrConflict) }
