package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/store"
)

// SpendOps is what the spend routes need.
type SpendOps interface {
	ReportSpend(ctx context.Context, p auth.Principal, in service.SpendReport) (service.SpendResult, error)
	SpendLogs(ctx context.Context, p auth.Principal, q service.SpendQuery) ([]store.SpendEntry, int64, error)
}

type spendJSON struct {
	RequestID        string    `json:"request_id"`
	APIKey           string    `json:"api_key"`
	User             string    `json:"user"`
	TeamID           string    `json:"team_id"`
	Model            string    `json:"model"`
	Spend            float64   `json:"spend"`
	PromptTokens     int64     `json:"prompt_tokens"`
	CompletionTokens int64     `json:"completion_tokens"`
	TotalTokens      int64     `json:"total_tokens"`
	StartTime        time.Time `json:"startTime"`
	EndTime          time.Time `json:"endTime"`
}

func (s *Server) spendReport(c *gin.Context) error {
	var in service.SpendReport
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	res, err := s.opts.Spend.ReportSpend(ctxOf(c), PrincipalOf(c), in)
	if err != nil {
		return err
	}
	status := "recorded"
	if res.Duplicate {
		status = "duplicate"
	}
	c.JSON(http.StatusOK, gin.H{"request_id": res.RequestID, "status": status})
	return nil
}

func parseDay(c *gin.Context, name string, endOfDay bool) (*time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse("2006-01-02", v)
	if err != nil {
		if t, err = time.Parse(time.RFC3339, v); err != nil {
			return nil, apperr.InvalidParam(name, "%s must be a date (YYYY-MM-DD) or an RFC 3339 time.", name)
		}
		return &t, nil
	}
	if endOfDay {
		t = t.Add(24*time.Hour - time.Nanosecond)
	}
	return &t, nil
}

// dateRange reads start_date (inclusive, from the day's start) and
// end_date (inclusive, to the day's end).
func dateRange(c *gin.Context) (since, until *time.Time, err error) {
	if since, err = parseDay(c, "start_date", false); err != nil {
		return nil, nil, err
	}
	if until, err = parseDay(c, "end_date", true); err != nil {
		return nil, nil, err
	}
	return since, until, nil
}

func (s *Server) spendLogs(c *gin.Context) error {
	since, until, err := dateRange(c)
	if err != nil {
		return err
	}
	page, size, err := pageParams(c, "page_size")
	if err != nil {
		return err
	}
	rows, _, err := s.opts.Spend.SpendLogs(ctxOf(c), PrincipalOf(c), service.SpendQuery{UserID: c.Query("user_id"), APIKey: c.Query("api_key"),
		TeamID: c.Query("team_id"), RequestID: c.Query("request_id"), Since: since, Until: until, Page: page, Size: size})
	if err != nil {
		return err
	}
	out := make([]spendJSON, 0, len(rows))
	for _, r := range rows {
		out = append(out, spendJSON{RequestID: r.RequestID, APIKey: r.KeyHash, User: r.UserID, TeamID: r.TeamID, Model: r.Model,
			Spend: r.Spend, PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens,
			TotalTokens: r.PromptTokens + r.CompletionTokens, StartTime: r.CreatedAt, EndTime: r.CreatedAt})
	}
	c.JSON(http.StatusOK, out)
	return nil
}
