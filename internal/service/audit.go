package service

import (
	"context"
	"fmt"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// AuditQuery filters the audit log.
type AuditQuery struct {
	Action   string
	ActorID  string
	TargetID string
	Since    *time.Time
	Until    *time.Time
	Page     int
	Size     int
	// Actor matches the actor's id or part of the acting user's e-mail.
	Actor string
	// NewestFirst lists the latest events first.
	NewestFirst bool
}

// ListAudit reads the audit log (admins and admin viewers).
func (s *Service) ListAudit(ctx context.Context, p auth.Principal, q AuditQuery) ([]store.AuditEvent, int64, error) {
	if err := require(p, rbac.PermReadAll); err != nil {
		return nil, 0, err
	}
	pg, err := pageOf(q.Page, q.Size, 50)
	if err != nil {
		return nil, 0, err
	}
	if len(q.Action) > 100 || len(q.ActorID) > maxIDLen || len(q.TargetID) > maxIDLen || len(q.Actor) > maxIDLen {
		return nil, 0, apperr.Invalid("Filter values are too long.")
	}
	rows, total, err := s.store.ListAudit(ctx, store.AuditFilter{Action: q.Action, ActorID: q.ActorID, TargetID: q.TargetID,
		Since: q.Since, Until: q.Until, Page: pg, Actor: q.Actor, NewestFirst: q.NewestFirst})
	if err != nil {
		return nil, 0, fmt.Errorf("service: list audit: %w", err)
	}
	return rows, total, nil
}
