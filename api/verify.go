package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
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

// verifyOK is the fixed answer of a successful /auth/verify: proxies read
// the status and the headers, so no per-request JSON is encoded.
const verifyOK = `{"status":"ok"}`

// verify is the forward-auth endpoint for nginx auth_request, Traefik
// forwardAuth and Envoy ext_authz: 200 with identity headers, or 401
// (missing, invalid, expired, blocked), 403 (model not allowed), 429
// (budget exceeded), 503 (database down and answer not cached). Every
// identity header is always set (empty when not applicable), so a client
// can never smuggle its own value past a proxy that copies them.
func (s *Server) verify(c *gin.Context) error {
	p, err := s.opts.Authenticator.Authenticate(c.Request.Context(), auth.CredentialFromRequest(c.Request, s.opts.SessionCookie))
	if err != nil {
		return err
	}
	model, known := strings.TrimSpace(c.GetHeader(HeaderModel)), true
	if model == "" {
		model, known = modelFromBody(c)
	}
	if !known && restricted(p) {
		return apperr.Forbidden("The request body is JSON but its model could not be read; this key is limited to certain models.")
	}
	if err := service.CheckAccess(p, model); err != nil {
		return err
	}
	team := p.KeyTeamID
	if team == "" && len(p.TeamIDs) > 0 {
		team = p.TeamIDs[0]
	}
	h := c.Writer.Header()
	h[HeaderUserID] = []string{p.UserID}
	h[HeaderUserRole] = []string{string(p.Role)}
	h[HeaderKeyID] = []string{p.KeyHash}
	h[HeaderTeamID] = []string{team}
	h[HeaderKeyAlias] = []string{p.KeyAlias}
	if c.Request.Method == http.MethodHead {
		c.Status(http.StatusOK)
		return nil
	}
	c.Writer.Header()["Content-Type"] = []string{"application/json"}
	c.Writer.WriteHeader(http.StatusOK)
	_, _ = c.Writer.WriteString(verifyOK)
	return nil
}

// restricted reports whether any model list applies to p.
func restricted(p auth.Principal) bool {
	a := p.Access
	return a != nil && (len(a.KeyModels) > 0 || len(a.UserModels) > 0 || len(a.TeamModels) > 0)
}

// modelFromBody finds the top-level "model" of a JSON body forwarded with
// the request (Traefik forwardBody, Envoy with_request_body). It reads at
// most maxModelProbe bytes and scans tokens, so "model" is found even when
// the body is longer than that and cut off. known is false when there is a
// JSON body whose model could not be established; the caller then refuses
// restricted keys rather than skipping the check.
func modelFromBody(c *gin.Context) (model string, known bool) {
	if c.Request.Body == nil || c.Request.ContentLength == 0 || !strings.Contains(c.GetHeader("Content-Type"), "json") {
		return "", true
	}
	dec := json.NewDecoder(io.LimitReader(c.Request.Body, maxModelProbe))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", false
		}
		key, _ := t.(string)
		if key == "model" {
			var m string
			if err := dec.Decode(&m); err != nil {
				return "", false
			}
			return m, true
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", true
}

func truncateModel(m string) string {
	if len(m) > 80 {
		return m[:80]
	}
	return m
}
