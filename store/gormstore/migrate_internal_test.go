package gormstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store"
)

func TestSQLiteUpgradeFromInitial(t *testing.T) {
	testUpgradeFromInitial(t, Options{SQLitePath: dbtest.SQLitePath(t)})
}

func TestPostgresUpgradeFromInitial(t *testing.T) {
	testUpgradeFromInitial(t, Options{DatabaseURL: dbtest.PostgresURL(t)})
}

// testUpgradeFromInitial builds a database as the first release left it
// (only 202611270001_initial, with rows in it), then opens it with the
// full history: the later steps apply and the old rows survive.
func testUpgradeFromInitial(t *testing.T, o Options) {
	ctx := t.Context()
	created := time.Date(2026, 11, 27, 10, 0, 0, 123456000, time.UTC)

	old, err := open(ctx, o, migrations()[:1])
	require.NoError(t, err)
	require.False(t, old.db.Migrator().HasColumn("invitations", "purpose"), "the old schema has no purpose column")
	// Rows of the old schema are written with the initial step's frozen
	// structs: the live rows have columns later steps add.
	require.NoError(t, old.db.WithContext(ctx).Create(&m0001User{ID: "u", Email: "u@example.com", EmailLower: "u@example.com",
		CreatedAt: created, UpdatedAt: created}).Error)
	require.NoError(t, old.db.WithContext(ctx).Create(&m0001Team{ID: "t", Alias: "Old Team", CreatedAt: created, UpdatedAt: created}).Error)
	// The live invitationRow already has Purpose, so the old row is
	// written with the frozen struct of the initial step.
	require.NoError(t, old.db.WithContext(ctx).Create(&m0001Invitation{IDHash: "old", UserID: "u",
		ExpiresAt: created.Add(time.Hour), CreatedAt: created, CreatedBy: "admin", UpdatedAt: created, UpdatedBy: "admin"}).Error)
	require.NoError(t, old.Close())

	for range 2 { // the second open finds nothing to do
		s, err := Open(ctx, o)
		require.NoError(t, err)
		var ids []string
		require.NoError(t, s.db.WithContext(ctx).Model(&migrationRow{}).Order("id").Pluck("id", &ids).Error)
		want := make([]string, 0, len(migrations()))
		for _, m := range migrations() {
			want = append(want, m.id)
		}
		require.Equal(t, want, ids, "every step recorded exactly once")
		require.True(t, s.db.Migrator().HasIndex("invitations", "invitations_user_purpose_idx"))
		require.False(t, s.db.Migrator().HasIndex("invitations", "invitations_user_idx"), "replaced by (user_id, purpose)")

		got, err := s.GetInvitation(ctx, "old")
		require.NoError(t, err)
		require.Equal(t, store.Invitation{IDHash: "old", UserID: "u", Purpose: store.PurposeInvitation,
			ExpiresAt: created.Add(time.Hour), CreatedAt: created, CreatedBy: "admin", UpdatedAt: created, UpdatedBy: "admin"}, got)
		page, total, err := s.ListInvitations(ctx, store.InvitationFilter{})
		require.NoError(t, err)
		require.EqualValues(t, 1, total, "existing rows are invitations")
		require.Equal(t, "old", page[0].IDHash)
		_, total, err = s.ListInvitations(ctx, store.InvitationFilter{Purpose: store.PurposePasswordReset})
		require.NoError(t, err)
		require.Zero(t, total)
		ou, err := s.GetUser(ctx, "u")
		require.NoError(t, err)
		require.Empty(t, ou.ExternalID, "existing users were never provisioned")
		require.Nil(t, ou.Directory)
		ot, err := s.GetTeam(ctx, "t")
		require.NoError(t, err)
		require.False(t, ot.DirectoryManaged, "existing teams are not the directory's")
		require.True(t, s.db.Migrator().HasIndex("users", "users_external_id_idx"))
		require.True(t, s.db.Migrator().HasIndex("teams", "teams_alias_lower_idx"))
		require.NoError(t, migrateSCIMDirectory(s.db.WithContext(ctx)), "idempotent")

		// The step is idempotent, so a half-applied history can re-run it.
		require.NoError(t, migrateInvitationPurpose(s.db.WithContext(ctx)))
		require.NoError(t, s.Close())
	}

	s, err := Open(ctx, o)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	reset := store.Invitation{IDHash: "reset", UserID: "u", Purpose: store.PurposePasswordReset,
		ExpiresAt: created.Add(time.Hour), CreatedAt: created, UpdatedAt: created}
	require.NoError(t, s.CreateInvitation(ctx, &reset))
	_, err = s.GetInvitation(ctx, "old")
	require.NoError(t, err, "a reset token leaves the migrated pending invitation alone")
}
