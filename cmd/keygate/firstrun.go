package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// firstAdminID is the account first-run set-up creates.
const firstAdminID = "admin"

// firstRunLink makes the web UI usable on a fresh install without any
// configuration: when no admin can sign in with a password (and no
// UI_USERNAME/UI_PASSWORD is set), an "admin" account is created (once)
// and a single-use link to set its password is printed. Each start prints
// a fresh link until the password is set; the older link stops working.
func firstRunLink(ctx context.Context, svc *service.Service, base string, stdout io.Writer) error {
	master := auth.Principal{Method: auth.MethodMasterKey, Role: rbac.RoleProxyAdmin}
	admins, _, err := svc.ListUsers(ctx, master, service.UserListInput{Role: string(rbac.RoleProxyAdmin), PageSize: 100})
	if err != nil {
		return fmt.Errorf("first run: %w", err)
	}
	for _, a := range admins {
		if a.User.PasswordHash != "" || a.User.SSOSubject != "" {
			return nil // someone can already sign in as admin
		}
	}
	if _, err := svc.GetUser(ctx, master, firstAdminID); err != nil {
		if apperr.KindOf(err) != apperr.KindNotFound && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("first run: %w", err)
		}
		id, role, no := firstAdminID, string(rbac.RoleProxyAdmin), false
		if _, err := svc.CreateUser(ctx, master, service.NewUser{UserID: &id, UserRole: &role, AutoCreateKey: &no}); err != nil {
			return fmt.Errorf("first run: create admin: %w", err)
		}
	}
	inv, err := svc.CreateInvitation(ctx, master, service.NewInvitation{UserID: firstAdminID})
	if err != nil {
		return fmt.Errorf("first run: invitation: %w", err)
	}
	fmt.Fprintf(stdout, "  first run:   set the admin password at %s\n", inv.Link)
	fmt.Fprintf(stdout, "               then sign in at %s/ui/login as %q (single-use link, valid until %s)\n",
		base, firstAdminID, inv.Invitation.ExpiresAt.Format("2006-01-02 15:04 MST"))
	return nil
}
