package app

import (
	"context"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/store"
)

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
