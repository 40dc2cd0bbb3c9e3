package service

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// SpendReport is one usage report from the proxy (/spend/report).
type SpendReport struct {
	RequestID        string   `json:"request_id"`
	APIKey           string   `json:"api_key"` // raw key or its hash
	Key              string   `json:"key"`     // alias of api_key
	Model            string   `json:"model"`
	PromptTokens     int64    `json:"prompt_tokens"`
	CompletionTokens int64    `json:"completion_tokens"`
	Spend            *float64 `json:"spend"`
}

// SpendResult says whether a report was counted or was a duplicate.
type SpendResult struct {
	RequestID string
	Duplicate bool
}

// maxTokens bounds reported token counts far above any real request and
// far below where their sum could overflow.
const maxTokens = 1e12

// ReportSpend records usage for a key once per request_id and adds it to
// the key's, owner's and team's totals atomically. A repeated request_id
// is answered as a duplicate and counted nothing.
func (s *Service) ReportSpend(ctx context.Context, p auth.Principal, in SpendReport) (SpendResult, error) {
	if err := require(p, rbac.PermSpendReport); err != nil {
		return SpendResult{}, err
	}
	if err := validID("request_id", in.RequestID); err != nil {
		return SpendResult{}, err
	}
	ref := in.APIKey
	if ref == "" {
		ref = in.Key
	}
	if in.Spend == nil {
		return SpendResult{}, apperr.InvalidParam("spend", "spend is required.")
	}
	if math.IsNaN(*in.Spend) || math.IsInf(*in.Spend, 0) || *in.Spend < 0 || *in.Spend > 1e9 {
		return SpendResult{}, apperr.InvalidParam("spend", "spend must be a non-negative number.")
	}
	if in.PromptTokens < 0 || in.CompletionTokens < 0 || in.PromptTokens > maxTokens || in.CompletionTokens > maxTokens {
		return SpendResult{}, apperr.InvalidParam("prompt_tokens", "Token counts must be between 0 and %d.", int64(maxTokens))
	}
	if len(in.Model) > maxAliasLen {
		return SpendResult{}, apperr.InvalidParam("model", "model is too long.")
	}
	k, err := s.loadKey(ctx, s.store, ref)
	if err != nil {
		return SpendResult{}, err
	}
	e := store.SpendEntry{RequestID: in.RequestID, KeyHash: k.Hash, UserID: k.UserID, TeamID: k.TeamID, Model: in.Model,
		PromptTokens: in.PromptTokens, CompletionTokens: in.CompletionTokens, Spend: *in.Spend, CreatedAt: s.Now()}
	err = s.tx(ctx, func(tx store.Store, ch *Changes) error {
		if err := tx.RecordSpend(ctx, e); err != nil {
			return err
		}
		// The key's, the owner's (and member's) and the team's spend moved:
		// cached figures rise in place on every replica.
		ch.Spend(auth.Spent{KeyHash: k.Hash, UserID: k.UserID, TeamID: k.TeamID, Amount: e.Spend})
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return SpendResult{RequestID: in.RequestID, Duplicate: true}, nil
		}
		return SpendResult{}, notFound(fmt.Errorf("service: record spend: %w", err), "Key not found.")
	}
	return SpendResult{RequestID: in.RequestID}, nil
}

// SpendQuery filters spend logs.
type SpendQuery struct {
	UserID    string
	APIKey    string
	TeamID    string
	RequestID string
	Since     *time.Time
	Until     *time.Time
	Page      int
	Size      int
}

// SpendLogs lists spend entries. Admins and admin viewers may filter
// freely; everyone else sees only their own rows — every filter is ANDed
// with their user id, so no filter can widen it.
func (s *Service) SpendLogs(ctx context.Context, p auth.Principal, q SpendQuery) ([]store.SpendEntry, int64, error) {
	if err := require(p, rbac.PermReadOwn); err != nil {
		return nil, 0, err
	}
	pg, err := pageOf(q.Page, q.Size, 100)
	if err != nil {
		return nil, 0, err
	}
	f := store.SpendFilter{UserID: q.UserID, TeamID: q.TeamID, RequestID: q.RequestID, Since: q.Since, Until: q.Until, Page: pg}
	if q.APIKey != "" {
		h, err := keyHashOf(q.APIKey)
		if err != nil {
			return nil, 0, err
		}
		f.KeyHash = h
	}
	if !p.Can(rbac.PermReadAll) {
		if p.UserID == "" {
			return nil, 0, nil
		}
		if q.UserID != "" && q.UserID != p.UserID {
			return nil, 0, apperr.Forbidden("You can only view your own spend.")
		}
		f.UserID = p.UserID
	}
	rows, total, err := s.store.ListSpend(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("service: list spend: %w", err)
	}
	return rows, total, nil
}
