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

// KeyOps is what the key routes need from the service layer.
type KeyOps interface {
	GenerateKey(ctx context.Context, p auth.Principal, in service.KeyRequest) (service.IssuedKey, error)
	KeyInfo(ctx context.Context, p auth.Principal, ref string) (store.Key, error)
	ListKeys(ctx context.Context, p auth.Principal, in service.KeyListInput) ([]store.Key, int64, error)
	UpdateKey(ctx context.Context, p auth.Principal, ref string, in service.KeyRequest) (store.Key, error)
	RegenerateKey(ctx context.Context, p auth.Principal, ref string, in service.KeyRequest) (service.IssuedKey, error)
	SetKeyBlocked(ctx context.Context, p auth.Principal, ref string, blocked bool) (store.Key, error)
	DeleteKeys(ctx context.Context, p auth.Principal, refs, aliases []string) error
}

// keyJSON is LiteLLM's key row; token/token_id are the SHA-256 hash.
type keyJSON struct {
	Key            string         `json:"key,omitempty"`
	KeyName        string         `json:"key_name"`
	KeyAlias       *string        `json:"key_alias"`
	Token          string         `json:"token"`
	TokenID        string         `json:"token_id"`
	Expires        *time.Time     `json:"expires"`
	UserID         *string        `json:"user_id"`
	TeamID         *string        `json:"team_id"`
	Models         []string       `json:"models"`
	AllowedRoutes  []string       `json:"allowed_routes"`
	Spend          float64        `json:"spend"`
	MaxBudget      *float64       `json:"max_budget"`
	BudgetDuration *string        `json:"budget_duration"`
	BudgetResetAt  *time.Time     `json:"budget_reset_at"`
	TPMLimit       *int64         `json:"tpm_limit"`
	RPMLimit       *int64         `json:"rpm_limit"`
	Metadata       map[string]any `json:"metadata"`
	Blocked        bool           `json:"blocked"`
	KeyType        string         `json:"key_type"`
	CreatedBy      string         `json:"created_by"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
	LastActive     *time.Time     `json:"last_active"`
}

func keyView(k store.Key, raw string) keyJSON {
	kt := k.KeyType
	if kt == "" {
		kt = "default"
	}
	return keyJSON{Key: raw, KeyName: k.KeyName, KeyAlias: strPtr(k.Alias), Token: k.Hash, TokenID: k.Hash, Expires: k.ExpiresAt,
		UserID: strPtr(k.UserID), TeamID: strPtr(k.TeamID), Models: nonNil(k.Models), AllowedRoutes: nonNil(k.AllowedRoutes), Spend: k.Spend, MaxBudget: k.MaxBudget,
		BudgetDuration: strPtr(k.BudgetDuration), BudgetResetAt: k.BudgetResetAt, TPMLimit: k.TPMLimit, RPMLimit: k.RPMLimit,
		Metadata: nonNilMap(k.Metadata), Blocked: k.Blocked, KeyType: kt, CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt,
		UpdatedAt: k.UpdatedAt, LastActive: k.LastActive}
}

// noStore marks answers that carry a raw key as uncacheable.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
}

func (s *Server) keyGenerate(c *gin.Context) error {
	var in service.KeyRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	k, err := s.opts.Keys.GenerateKey(ctxOf(c), PrincipalOf(c), in)
	if err != nil {
		return err
	}
	noStore(c)
	c.JSON(http.StatusOK, keyView(k.Key, k.Raw))
	return nil
}

func (s *Server) keyInfo(c *gin.Context) error {
	k, err := s.opts.Keys.KeyInfo(ctxOf(c), PrincipalOf(c), c.Query("key"))
	if err != nil {
		return err
	}
	info := keyView(k, "")
	c.JSON(http.StatusOK, gin.H{"key": k.Hash, "info": info})
	return nil
}

func (s *Server) keyList(c *gin.Context) error {
	page, size, err := pageParams(c, "size")
	if err != nil {
		return err
	}
	full := c.Query("return_full_object") == "true"
	keys, total, err := s.opts.Keys.ListKeys(ctxOf(c), PrincipalOf(c), service.KeyListInput{UserID: c.Query("user_id"), TeamID: c.Query("team_id"),
		KeyHash: c.Query("key_hash"), KeyAlias: c.Query("key_alias"), Page: page, Size: size})
	if err != nil {
		return err
	}
	if page == 0 {
		page = 1
	}
	if size == 0 {
		size = 10
	}
	out := make([]any, 0, len(keys))
	for _, k := range keys {
		if full {
			out = append(out, keyView(k, ""))
		} else {
			out = append(out, k.Hash)
		}
	}
	c.JSON(http.StatusOK, gin.H{"keys": out, "total_count": total, "current_page": page, "total_pages": totalPages(total, size)})
	return nil
}

func (s *Server) keyUpdate(c *gin.Context) error {
	var in service.KeyRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Key == nil {
		return apperr.InvalidParam("key", "key is required.")
	}
	ref := *in.Key
	in.Key = nil
	k, err := s.opts.Keys.UpdateKey(ctxOf(c), PrincipalOf(c), ref, in)
	if err != nil {
		return err
	}
	out := structToMap(keyView(k, ""))
	out["key"] = ref
	c.JSON(http.StatusOK, out)
	return nil
}

func (s *Server) keyRegenerate(c *gin.Context) error {
	var in service.KeyRequest
	if c.Request.ContentLength != 0 {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	ref := c.Param("key")
	if ref == "" && in.Key != nil {
		ref = *in.Key
	}
	in.Key = nil
	if ref == "" {
		return apperr.InvalidParam("key", "key is required.")
	}
	k, err := s.opts.Keys.RegenerateKey(ctxOf(c), PrincipalOf(c), ref, in)
	if err != nil {
		return err
	}
	noStore(c)
	c.JSON(http.StatusOK, keyView(k.Key, k.Raw))
	return nil
}

func (s *Server) keyBlock(blocked bool) func(c *gin.Context) error {
	return func(c *gin.Context) error {
		var in struct {
			Key string `json:"key"`
		}
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		k, err := s.opts.Keys.SetKeyBlocked(ctxOf(c), PrincipalOf(c), in.Key, blocked)
		if err != nil {
			return err
		}
		c.JSON(http.StatusOK, keyView(k, ""))
		return nil
	}
}

func (s *Server) keyDelete(c *gin.Context) error {
	var in struct {
		Keys       []string `json:"keys"`
		KeyAliases []string `json:"key_aliases"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := s.opts.Keys.DeleteKeys(ctxOf(c), PrincipalOf(c), in.Keys, in.KeyAliases); err != nil {
		return err
	}
	deleted := append(nonNil(in.Keys), in.KeyAliases...)
	c.JSON(http.StatusOK, gin.H{"deleted_keys": deleted})
	return nil
}
