package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
)

// Identity headers set on a successful /auth/verify; a reverse proxy
// copies them to the upstream request (see deploy/).
const (
	HeaderUserID   = "X-Keygate-User-Id"
	HeaderUserRole = "X-Keygate-User-Role"
	HeaderKeyID    = "X-Keygate-Key-Id"
	HeaderTeamID   = "X-Keygate-Team-Id"
	HeaderKeyAlias = "X-Keygate-Key-Alias"
	// HeaderModel lets the reverse proxy name the requested model, since
	// nginx's auth_request does not pass the body.
	HeaderModel = "X-Keygate-Model"
)

// maxModelProbe bounds how much of a forwarded body /auth/verify reads to
// find "model" (Envoy ext_authz may include the body).
const maxModelProbe = 64 << 10

// verify is the forward-auth endpoint for nginx auth_request, Traefik
// forwardAuth and Envoy ext_authz: 200 with identity headers, or 401
// (missing, invalid, expired, blocked), 403 (model not allowed), 429
// (budget exceeded), 503 (database down and answer not cached).
func (s *Server) verify(c *gin.Context) error {
	p, err := s.opts.Authenticator.Authenticate(c.Request.Context(), auth.CredentialFromRequest(c.Request, s.opts.SessionCookie))
	if err != nil {
		return err
	}
	model := strings.TrimSpace(c.GetHeader(HeaderModel))
	if model == "" {
		model = modelFromBody(c)
	}
	if err := CheckAccess(p, model); err != nil {
		return err
	}
	h := c.Writer.Header()
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set(HeaderUserID, p.UserID)
	set(HeaderUserRole, string(p.Role))
	set(HeaderKeyID, p.KeyHash)
	team := p.KeyTeamID
	if team == "" && len(p.TeamIDs) > 0 {
		team = p.TeamIDs[0]
	}
	set(HeaderTeamID, team)
	set(HeaderKeyAlias, p.KeyAlias)
	if c.Request.Method == http.MethodHead {
		c.Status(http.StatusOK)
		return nil
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "user_id": p.UserID, "user_role": p.Role, "method": p.Method})
	return nil
}

// modelFromBody reads "model" from a JSON body, if the request has one.
func modelFromBody(c *gin.Context) string {
	if c.Request.Body == nil || !strings.Contains(c.GetHeader("Content-Type"), "json") {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(c.Request.Body, maxModelProbe))
	if err != nil || len(b) == 0 {
		return ""
	}
	var v struct {
		Model string `json:"model"`
	}
	if json.NewDecoder(bytes.NewReader(b)).Decode(&v) != nil {
		return ""
	}
	return v.Model
}

// CheckAccess applies budgets and model rules to an authenticated
// principal: 429 when any budget is used up, 403 when model is not allowed
// by the key, its owner or its team. An empty model skips the model check.
func CheckAccess(p auth.Principal, model string) error {
	a := p.Access
	if a == nil {
		return nil
	}
	for _, b := range a.Budgets {
		if !b.ResetDue && b.Spend >= b.Max {
			e := apperr.Forbidden("Budget exceeded: the %s has spent %.4f of its %.4f budget.", b.Scope, b.Spend, b.Max)
			e.Kind = apperr.KindBudgetExceeded
			return e
		}
	}
	if model == "" {
		return nil
	}
	for _, list := range []struct {
		scope  string
		models []string
	}{{"key", a.KeyModels}, {"user", a.UserModels}, {"team", a.TeamModels}} {
		if !modelAllowed(list.models, model) {
			return apperr.Forbidden("Model %q is not allowed for this %s.", truncateModel(model), list.scope)
		}
	}
	return nil
}

func modelAllowed(models []string, model string) bool {
	if len(models) == 0 {
		return true
	}
	for _, m := range models {
		if m == model || m == "*" || m == "all-proxy-models" {
			return true
		}
		if strings.HasSuffix(m, "/*") && strings.HasPrefix(model, strings.TrimSuffix(m, "*")) {
			return true
		}
	}
	return false
}

func truncateModel(m string) string {
	if len(m) > 80 {
		return m[:80]
	}
	return m
}
