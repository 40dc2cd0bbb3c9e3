package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/apikey"
	"github.com/keygate/keygate/internal/access"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// KeyRequest is the body of /key/generate, /key/update and
// /key/regenerate (LiteLLM's field names). Pointers distinguish absent
// fields from zero values.
type KeyRequest struct {
	Key            *string        `json:"key"`
	KeyAlias       *string        `json:"key_alias"`
	Duration       *string        `json:"duration"`
	Models         []string       `json:"models"`
	AllowedRoutes  []string       `json:"allowed_routes"`
	MaxBudget      *float64       `json:"max_budget"`
	BudgetDuration *string        `json:"budget_duration"`
	TeamID         *string        `json:"team_id"`
	UserID         *string        `json:"user_id"`
	Metadata       map[string]any `json:"metadata"`
	KeyType        *string        `json:"key_type"`
	TPMLimit       *int64         `json:"tpm_limit"`
	RPMLimit       *int64         `json:"rpm_limit"`
	Blocked        *bool          `json:"blocked"`
	// NewKey lets an admin choose the regenerated key's value.
	NewKey *string `json:"new_key"`
}

// IssuedKey is a key record plus, once, its raw value.
type IssuedKey struct {
	Key store.Key
	Raw string // only set by generate and regenerate
}

// validKeyRequest is in.validate plus the rules that need the service: a
// custom value must not be a reserved one.
func (s *Service) validKeyRequest(in *KeyRequest) error {
	if err := in.validate(); err != nil {
		return err
	}
	for _, raw := range []*string{in.Key, in.NewKey} {
		if raw != nil && s.reserved != nil && s.reserved(*raw) {
			return apperr.InvalidParam("key", "This value cannot be an API key; choose another.")
		}
	}
	return nil
}

func (in *KeyRequest) validate() error {
	if in.KeyAlias != nil {
		if err := validAlias("key_alias", *in.KeyAlias); err != nil {
			return err
		}
	}
	if in.Duration != nil && *in.Duration != "" && *in.Duration != "-1" {
		if err := validDuration("duration", in.Duration); err != nil {
			return err
		}
	}
	if in.KeyType != nil && !rbac.ValidKeyType(*in.KeyType) {
		return apperr.InvalidParam("key_type", "Unknown key_type %q; use default, llm_api, management, read_only, service or scim.", truncate(*in.KeyType, 40))
	}
	if in.KeyType != nil && *in.KeyType == rbac.KeyTypeSCIM && in.UserID != nil && *in.UserID != "" {
		return apperr.InvalidParam("user_id", "A scim key acts for the identity provider and belongs to no user; omit user_id.")
	}
	for _, raw := range []*string{in.Key, in.NewKey} {
		if raw != nil {
			if _, err := apikey.Parse(*raw); err != nil {
				return apperr.InvalidParam("key", "A custom key must start with \"sk-\", be at most 256 characters and contain no spaces.")
			}
			if len(*raw) < 20 {
				return apperr.InvalidParam("key", "A custom key must be at least 20 characters long.")
			}
		}
	}
	return firstPublic(errors.Join(validBudget("max_budget", in.MaxBudget), validDuration("budget_duration", in.BudgetDuration),
		validModels("models", in.Models), validRoutes("allowed_routes", in.AllowedRoutes),
		validLimit("tpm_limit", in.TPMLimit), validLimit("rpm_limit", in.RPMLimit)))
}

// validRoutes checks allowed_routes: each entry a route ("/..."), a prefix
// ending in "*", or one of LiteLLM's route group names.
func validRoutes(param string, routes []string) error {
	if len(routes) > 100 {
		return apperr.InvalidParam(param, "%s may list at most 100 routes.", param)
	}
	for _, r := range routes {
		if access.RouteGroup(r) {
			continue
		}
		if !strings.HasPrefix(r, "/") || len(r) > 200 || strings.ContainsAny(r, " \t\r\n?#%\x00") {
			return apperr.InvalidParam(param, "%s entries must be routes starting with \"/\" (a trailing * matches a prefix) or route groups such as llm_api_routes; got %q.", param, truncate(r, 60))
		}
	}
	return nil
}

// expiryOf turns LiteLLM's duration (nil, "" or "-1" = never) into a time.
func expiryOf(now time.Time, d *string) *time.Time {
	if d == nil || *d == "" || *d == "-1" {
		return nil
	}
	dur, _ := ParseDuration(*d)
	t := now.Add(dur)
	return &t
}

// GenerateKey creates an API key. proxy_admin may create keys for anyone
// (or ownerless keys, by omitting user_id); everyone else with
// PermKeyWriteOwn creates keys only for themselves, only in teams they
// belong to, and only within their own models and budget.
func (s *Service) GenerateKey(ctx context.Context, p auth.Principal, in KeyRequest) (IssuedKey, error) {
	if err := require(p, rbac.PermKeyWriteOwn); err != nil {
		return IssuedKey{}, err
	}
	if err := s.validKeyRequest(&in); err != nil {
		return IssuedKey{}, err
	}
	admin := p.Can(rbac.PermKeyWriteAny)
	owner := ""
	if in.UserID != nil {
		owner = *in.UserID
	}
	if !admin {
		if owner != "" && owner != p.UserID {
			return IssuedKey{}, apperr.Forbidden("User can only create keys for themselves (user_id must be your own).")
		}
		owner = p.UserID
		if owner == "" {
			return IssuedKey{}, apperr.Forbidden("Only a proxy admin can create keys that belong to no user.")
		}
		if in.Key != nil {
			return IssuedKey{}, apperr.Forbidden("Only a proxy admin can choose a key's value.")
		}
		if in.KeyType != nil && (*in.KeyType == rbac.KeyTypeService || *in.KeyType == rbac.KeyTypeSCIM) {
			return IssuedKey{}, apperr.Forbidden("Only a proxy admin can create %s keys.", *in.KeyType)
		}
		if in.Blocked != nil && *in.Blocked {
			return IssuedKey{}, apperr.Forbidden("Only a proxy admin can block keys.")
		}
	}
	raw := ""
	if in.Key != nil {
		raw = *in.Key
	} else {
		var err error
		if raw, err = apikey.Generate(randReader{s.rand}); err != nil {
			return IssuedKey{}, fmt.Errorf("service: generate key: %w", err)
		}
	}
	now := s.Now()
	k := store.Key{Hash: apikey.Hash(raw), KeyName: apikey.KeyName(raw), Models: in.Models, AllowedRoutes: in.AllowedRoutes, MaxBudget: in.MaxBudget,
		TPMLimit: in.TPMLimit, RPMLimit: in.RPMLimit, Metadata: in.Metadata, UserID: owner, ExpiresAt: expiryOf(now, in.Duration),
		CreatedBy: p.ActorID(), CreatedAt: now, UpdatedAt: now}
	if in.KeyAlias != nil {
		k.Alias = *in.KeyAlias
	}
	if in.TeamID != nil {
		k.TeamID = *in.TeamID
	}
	if in.KeyType != nil {
		k.KeyType = *in.KeyType
	}
	if in.Blocked != nil {
		k.Blocked = *in.Blocked
	}
	if in.BudgetDuration != nil && *in.BudgetDuration != "" {
		d, _ := ParseDuration(*in.BudgetDuration)
		k.BudgetDuration = *in.BudgetDuration
		reset := now.Add(d)
		k.BudgetResetAt = &reset
	}
	err := s.tx(ctx, func(tx store.Store, ch *Changes) error {
		if err := s.checkKeyScope(ctx, tx, p, admin, k); err != nil {
			return err
		}
		// A negative cache entry may exist for a chosen or imported value.
		ch.Key(k.Hash)
		if err := tx.CreateKey(ctx, &k); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("A key with this key_alias (or value) already exists.").Wrap(err)
			}
			return fmt.Errorf("service: create key: %w", err)
		}
		return s.audit(ctx, tx, p, "key.created", "key", k.Hash, nil, keySummary(k))
	})
	if err != nil {
		return IssuedKey{}, err
	}
	return IssuedKey{Key: k, Raw: raw}, nil
}

// checkKeyScope enforces that the key's owner and team exist, that the
// owner of a team key is a member of the team, that a non-admin names only
// teams they belong to, and — for every caller, proxy admins included —
// that the key does not state more than its owner may hold: a personal
// key within the owner's models, budget and rate limits, a team key within
// the team's (LiteLLM's scoping). An empty model list inherits and is
// always fine; the access decision intersects the lists at run time.
func (s *Service) checkKeyScope(ctx context.Context, tx store.Store, p auth.Principal, admin bool, k store.Key) error {
	var owner store.User
	if k.UserID != "" {
		u, err := tx.GetUser(ctx, k.UserID)
		if err != nil {
			return notFound(err, "User %q not found.", truncate(k.UserID, 80))
		}
		owner = u
	}
	if k.TeamID == "" {
		return narrows("owner", owner.Models, owner.MaxBudget, owner.TPMLimit, owner.RPMLimit, k)
	}
	team, err := tx.GetTeam(ctx, k.TeamID)
	if err != nil {
		if !admin && errors.Is(err, store.ErrNotFound) {
			return apperr.Forbidden("You can only create keys for teams you are a member of.")
		}
		return notFound(err, "Team %q not found.", truncate(k.TeamID, 80))
	}
	if k.UserID != "" {
		if _, err := tx.GetMembership(ctx, k.TeamID, k.UserID); err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("service: check membership: %w", err)
			}
			if !admin {
				return apperr.Forbidden("You can only create keys for teams you are a member of.")
			}
			return apperr.InvalidParam("team_id", "User %q is not a member of team %q; add them to the team first.", truncate(k.UserID, 80), truncate(k.TeamID, 80))
		}
	}
	return narrows("team", team.Models, team.MaxBudget, team.TPMLimit, team.RPMLimit, k)
}

// ScopeError is the cause of narrows' refusals: which of its holder's
// limits a key would exceed. The API sends the message; the web UI words
// the same facts for people.
type ScopeError struct {
	Holder  string   // "owner" or "team"
	Field   string   // "models", "max_budget", "tpm_limit" or "rpm_limit"
	Model   string   // the model not allowed; "" when the key would allow every model
	Allowed []string // the holder's models
	Limit   float64  // the holder's budget
}

func (e *ScopeError) Error() string { return "key exceeds the " + e.Holder + "'s " + e.Field }

// narrows rejects a key that states more than its holder may use: models
// outside the allowed list, a larger budget or higher rate limits.
func narrows(holder string, models []string, budget *float64, tpm, rpm *int64, k store.Key) error {
	whose := "the " + holder + "'s"
	cause := &ScopeError{Holder: holder, Allowed: models}
	if len(k.Models) > 0 {
		if m, ok := access.Narrows(models, k.Models); !ok {
			cause.Field, cause.Model = "models", m
			if m == "" {
				return apperr.Forbidden("The key may not allow every model: %s access is limited to %s.", whose, strings.Join(models, ", ")).Wrap(cause)
			}
			return apperr.Forbidden("Model %q is not in %s allowed models; a key can only narrow access.", truncate(m, 80), whose).Wrap(cause)
		}
	}
	if budget != nil && k.MaxBudget != nil && *k.MaxBudget > *budget {
		cause.Field, cause.Limit = "max_budget", *budget
		return apperr.Forbidden("max_budget %.4g exceeds %s budget of %.4g; a key can only narrow access.", *k.MaxBudget, whose, *budget).Wrap(cause)
	}
	if tpm != nil && k.TPMLimit != nil && *k.TPMLimit > *tpm {
		cause.Field = "tpm_limit"
		return apperr.Forbidden("tpm_limit exceeds %s limit; a key can only narrow access.", whose).Wrap(cause)
	}
	if rpm != nil && k.RPMLimit != nil && *k.RPMLimit > *rpm {
		cause.Field = "rpm_limit"
		return apperr.Forbidden("rpm_limit exceeds %s limit; a key can only narrow access.", whose).Wrap(cause)
	}
	return nil
}

func keySummary(k store.Key) map[string]any {
	return map[string]any{"key_name": k.KeyName, "key_alias": k.Alias, "user_id": k.UserID, "team_id": k.TeamID,
		"models": k.Models, "max_budget": k.MaxBudget, "blocked": k.Blocked, "expires": k.ExpiresAt, "key_type": k.KeyType}
}

// randReader adapts the service's rand function to io.Reader.
type randReader struct{ f func([]byte) (int, error) }

func (r randReader) Read(b []byte) (int, error) { return r.f(b) }
