// Package storetest is the conformance suite for store.Store: every
// implementation (SQLite and PostgreSQL via gormstore today) must pass
// Run. Each behaviour is a named subtest on a fresh, empty store, so a
// failure names the rule that broke.
package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

// Run runs the suite. open must return a fresh, empty store on every call
// and close it when t ends; it is called from parallel subtests.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Ping", testPing},
		{"Users/CRUD", testUsersCRUD},
		{"Users/EmailUniqueCaseInsensitive", testUsersEmailUnique},
		{"Users/SSOUnique", testUsersSSOUnique},
		{"Users/ListPaginationAndFilters", testUsersList},
		{"Users/DeleteCascades", testUsersDeleteCascade},
		{"Teams/CRUD", testTeamsCRUD},
		{"Teams/Memberships", testMemberships},
		{"Teams/List", testTeamsList},
		{"Teams/DeleteCascades", testTeamsDeleteCascade},
		{"Parents/NoOrphansWhenDeletedMeanwhile", testParentsNoOrphans},
		{"Parents/MustExist", testParentsMustExist},
		{"Keys/CRUD", testKeysCRUD},
		{"Keys/AliasUnique", testKeysAliasUnique},
		{"Keys/ReplaceHash", testKeysReplaceHash},
		{"Keys/ListPaginationAndFilters", testKeysList},
		{"Keys/Touch", testKeysTouch},
		{"Keys/AccessInOneLoad", testKeyAccess},
		{"Keys/AccessConcurrent", testKeyAccessConcurrent},
		{"Budgets/ResetDue", testResetDueBudgets},
		{"Budgets/ResetDueInTx", testResetDueBudgetsTx},
		{"Budgets/HoldFigures", testBudgetHoldFigures},
		{"Budgets/HoldEndsWithSpend", testBudgetHoldEndsWithSpend},
		{"Budgets/HoldsConcurrent", testBudgetHoldsConcurrent},
		{"Spend/ConcurrentAddsUp", testSpendConcurrent},
		{"Spend/DuplicateRequestCountedOnce", testSpendDuplicate},
		{"Spend/List", testSpendList},
		{"Spend/HistoryMovesNoTotal", testSpendHistory},
		{"Spend/BatchAddsUpOnce", testSpendBatch},
		{"Spend/BatchConcurrent", testSpendBatchConcurrent},
		{"Invitations/CRUD", testInvitationsCRUD},
		{"Invitations/ConcurrentConsumeOnce", testInvitationsConcurrentConsume},
		{"Invitations/Expired", testInvitationsExpired},
		{"Invitations/Superseded", testInvitationsSuperseded},
		{"Invitations/PurposeRoundTrip", testInvitationsPurposeRoundTrip},
		{"Invitations/ListByPurpose", testInvitationsListByPurpose},
		{"Invitations/SupersedeByPurpose", testInvitationsSupersedeByPurpose},
		{"Sessions/RevokeOne", testSessionsRevokeOne},
		{"Sessions/RevokeUserKeep", testSessionsRevokeUser},
		{"Sessions/RevokeBySSOSID", testSessionsRevokeBySID},
		{"SigningKeys", testSigningKeys},
		{"LoginAttempts", testLoginAttempts},
		{"LoginAttempts/TakeWithinLimit", testTakeLoginAttempt},
		{"LoginAttempts/ConcurrentTakesNeverExceedLimit", testTakeLoginAttemptConcurrent},
		{"Audit", testAudit},
		{"Errors/NotFound", testNotFound},
		{"Errors/Conflict", testConflict},
		{"Errors/UpdateFuncError", testUpdateFuncError},
		{"Tx/RollbackOnError", testTxRollback},
		{"Tx/RollbackOnPanic", testTxPanic},
		{"Tx/Commit", testTxCommit},
		{"Users/Directory", testUsersDirectory},
		{"Users/Where", testUsersWhere},
		{"Teams/Directory", testTeamsDirectory},
		{"Teams/Where", testTeamsWhere},
		{"Keys/ByType", testKeysByType},
		{"Audit/ActionPrefix", testAuditPrefix},
		{"Sessions/AMR", testSessionsAMR},
		{"MFA/TOTPLifecycle", testTOTPLifecycle},
		{"MFA/TOTPConcurrentStepOnce", testTOTPConcurrentStepOnce},
		{"MFA/Passkeys", testPasskeys},
		{"MFA/RecoveryCodes", testRecoveryCodes},
		{"MFA/SummariesAndDelete", testMFASummariesAndDelete},
		{"MFA/Challenges", testMFAChallenges},
		{"Keys/AliasUniquePerOwner", testKeysAliasPerOwner},
		{"Keys/OrderAndOwner", testKeysOrderAndOwner},
		{"Users/Order", testUsersOrder},
		{"Audit/NewestFirstAndActor", testAuditNewestFirstAndActor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			require.NotNil(t, s, "open returned no store")
			tc.fn(t, s)
		})
	}
}

// ---- fixtures ----

// at returns a fixed instant plus minutes; fractional microseconds check
// that times survive storage exactly.
func at(minutes int) time.Time {
	return time.Date(2026, 11, 27, 10, 0, 0, 123456000, time.UTC).Add(time.Duration(minutes) * time.Minute)
}

func ptr[T any](v T) *T { return &v }

func mkUser(t *testing.T, s store.Store, id, email string, created time.Time) store.User {
	t.Helper()
	u := store.User{ID: id, Email: email, Role: "internal_user", CreatedAt: created, UpdatedAt: created}
	require.NoError(t, s.CreateUser(t.Context(), &u))
	return u
}

func mkTeam(t *testing.T, s store.Store, id string, created time.Time) store.Team {
	t.Helper()
	tm := store.Team{ID: id, Alias: id + "-alias", CreatedAt: created, UpdatedAt: created}
	require.NoError(t, s.CreateTeam(t.Context(), &tm))
	return tm
}

func mkKey(t *testing.T, s store.Store, hash, userID, teamID string, created time.Time) store.Key {
	t.Helper()
	k := store.Key{Hash: hash, KeyName: "sk-...", UserID: userID, TeamID: teamID, CreatedAt: created, UpdatedAt: created}
	require.NoError(t, s.CreateKey(t.Context(), &k))
	return k
}

func mkMember(t *testing.T, s store.Store, teamID, userID string, created time.Time) {
	t.Helper()
	require.NoError(t, s.PutMembership(t.Context(), store.Membership{TeamID: teamID, UserID: userID, Role: "user", CreatedAt: created}))
}

func mkInvitation(t *testing.T, s store.Store, idHash, userID string, created, expires time.Time) store.Invitation {
	t.Helper()
	inv := store.Invitation{IDHash: idHash, UserID: userID, ExpiresAt: expires, CreatedAt: created, CreatedBy: "admin",
		UpdatedAt: created, UpdatedBy: "admin"}
	require.NoError(t, s.CreateInvitation(t.Context(), &inv))
	return inv
}

func mkSession(t *testing.T, s store.Store, id, userID, sid string, created, expires time.Time) store.Session {
	t.Helper()
	x := store.Session{ID: id, UserID: userID, Role: "internal_user", LoginMethod: "password", SSOSID: sid,
		CreatedAt: created, ExpiresAt: expires}
	require.NoError(t, s.CreateSession(t.Context(), &x))
	return x
}

func userIDs(us []store.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

func keyHashes(ks []store.Key) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.Hash
	}
	return out
}

func testPing(t *testing.T, s store.Store) {
	require.NoError(t, s.Ping(t.Context()))
}
