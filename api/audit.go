package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/store"
)

// AuditOps reads the audit log.
type AuditOps interface {
	ListAudit(ctx context.Context, p auth.Principal, q service.AuditQuery) ([]store.AuditEvent, int64, error)
}

type auditJSON struct {
	ID         int64          `json:"id"`
	At         time.Time      `json:"at"`
	Action     string         `json:"action"`
	ActorID    string         `json:"actor_id"`
	ActorRole  string         `json:"actor_role"`
	TargetType string         `json:"target_type"`
	TargetID   string         `json:"target_id"`
	ClientIP   string         `json:"client_ip"`
	RequestID  string         `json:"request_id"`
	Before     map[string]any `json:"before"`
	After      map[string]any `json:"after"`
}

// auditList is GET /audit: the append-only record of security-relevant
// changes, newest filters first applied by the store (oldest first order).
func (s *Server) auditList(c *gin.Context) error {
	since, until, err := dateRange(c)
	if err != nil {
		return err
	}
	page, size, err := pageParams(c, "page_size")
	if err != nil {
		return err
	}
	rows, total, err := s.opts.Audit.ListAudit(ctxOf(c), PrincipalOf(c), service.AuditQuery{Action: c.Query("action"),
		ActorID: c.Query("actor_id"), TargetID: c.Query("target_id"), Since: since, Until: until, Page: page, Size: size})
	if err != nil {
		return err
	}
	if page == 0 {
		page = 1
	}
	if size == 0 {
		size = 50
	}
	out := make([]auditJSON, 0, len(rows))
	for _, r := range rows {
		out = append(out, auditJSON{ID: r.ID, At: r.At, Action: r.Action, ActorID: r.ActorID, ActorRole: r.ActorRole,
			TargetType: r.TargetType, TargetID: r.TargetID, ClientIP: r.ClientIP, RequestID: r.RequestID,
			Before: r.Before, After: r.After})
	}
	c.JSON(http.StatusOK, gin.H{"events": out, "total": total, "page": page, "page_size": size, "total_pages": totalPages(total, size)})
	return nil
}
