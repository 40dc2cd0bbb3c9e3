package app

import (
	"context"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/store"
)

// autoCreateKey honours /user/new's auto_create_key (default true, as in
// LiteLLM): the new user's first key is returned in "key".
func (a *App) autoCreateKey(ctx context.Context, p auth.Principal, in service.NewUser, d service.UserDetail, out map[string]any) error {
	if in.AutoCreateKey != nil && !*in.AutoCreateKey {
		return nil
	}
	uid := d.User.ID
	req := service.KeyRequest{UserID: &uid}
	if len(d.User.Models) > 0 {
		req.Models = d.User.Models
	}
	k, err := a.svc.GenerateKey(ctx, p, req)
	if err != nil {
		return err
	}
	out["key"] = k.Raw
	out["key_name"] = k.Key.KeyName
	out["token"] = k.Key.Hash
	out["expires"] = k.Key.ExpiresAt
	return nil
}

func (a *App) userInfoKeys(ctx context.Context, p auth.Principal, d service.UserDetail, out map[string]any) error {
	keys, _, err := a.svc.ListKeys(ctx, p, service.KeyListInput{UserID: d.User.ID, Size: 100})
	if err != nil {
		return err
	}
	out["keys"] = keyRows(keys)
	return nil
}

func (a *App) teamInfoKeys(ctx context.Context, p auth.Principal, d service.TeamDetail, out map[string]any) error {
	keys, _, err := a.svc.ListKeys(ctx, p, service.KeyListInput{TeamID: d.Team.ID, Size: 100})
	if err != nil {
		return err
	}
	out["keys"] = keyRows(keys)
	return nil
}

func keyRows(keys []store.Key) []map[string]any {
	rows := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, map[string]any{"token": k.Hash, "key_name": k.KeyName, "key_alias": k.Alias, "spend": k.Spend,
			"max_budget": k.MaxBudget, "models": k.Models, "expires": k.ExpiresAt, "team_id": k.TeamID, "user_id": k.UserID,
			"blocked": k.Blocked, "created_at": k.CreatedAt, "last_active": k.LastActive})
	}
	return rows
}

// inviteNewUser honours /user/new's send_invite_email: an invitation is
// created and mailed, and its link returned (so it can be shared by hand if
// the mail fails).
func (a *App) inviteNewUser(ctx context.Context, p auth.Principal, in service.NewUser, d service.UserDetail, out map[string]any) error {
	if in.SendInviteEmail == nil || !*in.SendInviteEmail {
		return nil
	}
	send := true
	iss, err := a.svc.CreateInvitation(ctx, p, service.NewInvitation{UserID: d.User.ID, SendEmail: &send})
	if err != nil {
		return err
	}
	out["invitation_id"] = iss.ID
	out["invitation_link"] = iss.Link
	out["email_sent"] = iss.MailSent
	if iss.MailError != "" {
		out["email_error"] = iss.MailError
	}
	return nil
}
