package service_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

// announceRecorder tells notifications sent inside a transaction from
// those sent on the store after it: only the first kind commits with the
// write, so a crash between commit and announcement cannot leave another
// replica serving a cached answer the write took away.
type announceRecorder struct {
	store.Store
	mu      sync.Mutex
	inTx    []string
	outside []string
}

func (r *announceRecorder) Tx(ctx context.Context, fn func(store.Store) error) error {
	return r.Store.Tx(ctx, func(tx store.Store) error { return fn(txAnnouncer{Store: tx, r: r}) })
}

func (r *announceRecorder) Notify(ctx context.Context, channel, payload string) error {
	r.mu.Lock()
	r.outside = append(r.outside, payload)
	r.mu.Unlock()
	return r.Store.Notify(ctx, channel, payload)
}

func (r *announceRecorder) take() (inTx, outside []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	inTx, outside, r.inTx, r.outside = r.inTx, r.outside, nil, nil
	return inTx, outside
}

type txAnnouncer struct {
	store.Store
	r *announceRecorder
}

func (t txAnnouncer) Notify(ctx context.Context, channel, payload string) error {
	t.r.mu.Lock()
	t.r.inTx = append(t.r.inTx, payload)
	t.r.mu.Unlock()
	return t.Store.Notify(ctx, channel, payload)
}

// TestDirectoryAndLogoutChangesAnnounceInTheirTransaction: SCIM
// deprovisioning, group changes, back-channel logout and reported spend
// announce their cache drops in the transaction that makes them.
func TestDirectoryAndLogoutChangesAnnounceInTheirTransaction(t *testing.T) {
	ctx := context.Background()
	st, err := gormstore.Open(ctx, gormstore.Options{SQLitePath: dbtest.SQLitePath(t), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	rec := &announceRecorder{Store: st}
	svc := service.New(service.Options{Store: rec, Logger: slog.New(slog.DiscardHandler), InvalidationChannel: "keygate_test", InstanceID: "a"})
	admin := auth.Principal{Method: auth.MethodMasterKey, Role: rbac.RoleProxyAdmin}

	expectInTx := func(step string) {
		t.Helper()
		inTx, outside := rec.take()
		require.Empty(t, outside, "%s: announced after its transaction", step)
		require.NotEmpty(t, inTx, "%s: announced nothing", step)
	}

	u, err := svc.CreateDirectoryUser(ctx, admin, service.DirectoryUser{UserName: "ada@example.com", Active: true})
	require.NoError(t, err)
	rec.take()
	g, err := svc.CreateDirectoryGroup(ctx, admin, service.DirectoryGroup{DisplayName: "eng", Members: []service.DirectoryRef{{ID: u.ID}}})
	require.NoError(t, err)
	expectInTx("group created with a member")
	_, err = svc.UpdateDirectoryGroup(ctx, admin, g.ID, func(d *service.DirectoryGroup) error { d.Members = nil; return nil })
	require.NoError(t, err)
	expectInTx("member removed from group")
	_, err = svc.UpdateDirectoryUser(ctx, admin, u.ID, func(d *service.DirectoryUser) error { d.Active = false; return nil })
	require.NoError(t, err)
	expectInTx("user deactivated")
	require.NoError(t, svc.DeleteDirectoryGroup(ctx, admin, g.ID))
	expectInTx("group deleted")
	require.NoError(t, svc.DeleteDirectoryUser(ctx, admin, u.ID))
	expectInTx("user deleted")

	email, role := "bob@example.com", string(rbac.RoleInternalUser)
	bob, err := svc.CreateUser(ctx, admin, service.NewUser{UserEmail: &email, UserRole: &role})
	require.NoError(t, err)
	now := svc.Now()
	require.NoError(t, st.CreateSession(ctx, &store.Session{ID: "sess-bob", UserID: bob.User.ID, Role: role, LoginMethod: "sso",
		SSOSID: "idp-sid-1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	rec.take()
	n, err := svc.BackchannelLogout(ctx, sso.LogoutClaims{Issuer: "https://idp.example", SID: "idp-sid-1"})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	expectInTx("back-channel logout")
}
