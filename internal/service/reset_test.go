package service_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/mail"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/internal/testutil/smtptest"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

// TestForgotPasswordDoesTheSameWorkEitherWay: everything that depends
// on whether the account exists (the lookup, the token, the mail) runs
// after ForgotPassword has returned, so the answer cannot take longer for
// a real account. The deferred work is held here and run by hand.
func TestForgotPasswordDoesTheSameWorkEitherWay(t *testing.T) {
	ctx := context.Background()
	st, err := gormstore.Open(ctx, gormstore.Options{SQLitePath: dbtest.SQLitePath(t), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	sink := smtptest.Start(t)
	m, err := mail.New(mail.Options{Host: "127.0.0.1", Port: sink.Port(), TLS: mail.TLSNone, From: "keygate@example.com"})
	require.NoError(t, err)
	var later []func()
	svc := service.New(service.Options{Store: st, Logger: slog.New(slog.DiscardHandler), Background: func(run func()) { later = append(later, run) },
		Invitations: service.InvitationOptions{BaseURL: "https://keygate.example.com", Mailer: app.Mailer(m)}})
	email, role := "known@example.com", string(rbac.RoleInternalUser)
	_, err = svc.CreateUser(ctx, auth.Principal{Method: auth.MethodMasterKey, Role: rbac.RoleProxyAdmin}, service.NewUser{UserEmail: &email, UserRole: &role})
	require.NoError(t, err)
	resets := func() int64 {
		_, n, err := st.ListInvitations(ctx, store.InvitationFilter{Purpose: "password_reset", Page: store.Page{Limit: 10}})
		require.NoError(t, err)
		return n
	}

	require.NoError(t, svc.ForgotPassword(ctx, "known@example.com", "192.0.2.1"))
	require.NoError(t, svc.ForgotPassword(ctx, "nobody@example.com", "192.0.2.1"))
	require.Len(t, later, 2, "both requests deferred the same work")
	require.Zero(t, resets(), "nothing account-specific happened before the answer")
	require.Empty(t, sink.Messages())

	for _, run := range later {
		run()
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, svc.Drain(dctx))
	require.EqualValues(t, 1, resets())
	msgs := sink.Wait(t, 1)
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"known@example.com"}, msgs[0].Rcpt)
	require.Contains(t, msgs[0].Text(), "https://keygate.example.com/ui/reset-password?token=")
}

func TestMain(m *testing.M) { dbtest.Main(m) }
