package api

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/access"
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
	// HeaderModel lets a trusted reverse proxy name the requested model
	// (nginx + njs reads it from the body, which auth_request cannot send).
	HeaderModel = "X-Keygate-Model"
)

// Headers a trusted proxy uses to say which request it asks about:
// nginx (X-Original-*) and Traefik (X-Forwarded-*).
var (
	routeHeaders  = []string{"X-Original-Uri", "X-Forwarded-Uri"}
	methodHeaders = []string{"X-Original-Method", "X-Forwarded-Method"}
)

// maxVerifyBody bounds how much of a forwarded body /auth/verify reads
// to find the model (Traefik forwardBody, Envoy with_request_body). A body
// cut off by it, or by the proxy, leaves the model unknown: credentials
// limited to some models are then refused.
const maxVerifyBody = 16 << 20

// verifyOK is the fixed answer of a successful /auth/verify: proxies read
// the status and the headers, so no per-request JSON is encoded.
const verifyOK = `{"status":"ok"}`

// verify is the forward-auth endpoint for nginx auth_request, Traefik
// forwardAuth and Envoy ext_authz: 200 with identity headers, or 401
// (missing, invalid, expired, blocked), 403 (route or model not allowed),
// 429 (budget exceeded), 503 (database down and answer not cached). The
// decision is service.Decide, the same as forwarding mode's. Every
// identity header is always set (empty when not applicable), so a client
// can never smuggle its own value past a proxy that copies them.
func (s *Server) verify(c *gin.Context) error {
	p, err := s.opts.Authenticator.Authenticate(c.Request.Context(), auth.CredentialFromRequest(c.Request, s.opts.SessionCookie))
	if err != nil {
		return err
	}
	if err := service.Decide(p, s.verifyRequest(c, p)); err != nil {
		return err
	}
	id := access.IdentityOf(p)
	h := c.Writer.Header()
	h[HeaderUserID] = []string{id.UserID}
	h[HeaderUserRole] = []string{id.Role}
	h[HeaderKeyID] = []string{id.KeyID}
	h[HeaderTeamID] = []string{id.TeamID}
	h[HeaderKeyAlias] = []string{id.KeyAlias}
	if c.Request.Method == http.MethodHead {
		c.Status(http.StatusOK)
		return nil
	}
	c.Writer.Header()["Content-Type"] = []string{"application/json"}
	c.Writer.WriteHeader(http.StatusOK)
	_, _ = c.Writer.WriteString(verifyOK)
	return nil
}

// verifyRequest works out what the proxy asks about: the client's route
// and method, and every model the request names.
//
// The route comes from the path after /auth/verify (Envoy's path_prefix),
// from ?path= (deploy/envoy), or, from a trusted proxy only, from
// X-Original-URI (nginx) or X-Forwarded-Uri (Traefik). Models come from
// the forwarded body, the route's path and query, verify's own ?model=,
// and X-Keygate-Model. The header always counts as a model to check (it
// can only narrow); it establishes the model only when a trusted proxy
// sent it, because a client can send it too and plain auth_request shows
// Keygate no body to compare it with.
func (s *Server) verifyRequest(c *gin.Context, p auth.Principal) access.Request {
	r := c.Request
	trusted := s.opts.TrustedPeer != nil && s.opts.TrustedPeer(r)
	req := access.Request{Method: r.Method, ModelsKnown: true}
	uri := ""
	if suffix := strings.TrimPrefix(r.URL.EscapedPath(), "/auth/verify"); suffix != "" && suffix != "/" {
		uri = suffix
		if r.URL.RawQuery != "" {
			uri += "?" + r.URL.RawQuery
		}
	} else if rest, ok := strings.CutPrefix(r.URL.RawQuery, "path="); ok {
		uri = rest
	} else if trusted {
		uri = firstHeader(r, routeHeaders)
		if m := firstHeader(r, methodHeaders); m != "" {
			req.Method = m
		}
	}
	if uri != "" {
		route, query, ok := access.SplitRoute(uri)
		if !ok {
			req.ModelsKnown = false
		}
		req.Route = route
		req.Models = append(req.Models, access.ModelsInURL(route, query)...)
	}
	established := len(req.Models) > 0
	own, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		req.ModelsKnown = false
	}
	for _, m := range own["model"] {
		if m != "" {
			req.Models = append(req.Models, m)
			established = true
		}
	}
	if !access.Restricted(p) {
		// Nothing in the answer depends on the body: skip reading it.
		return req
	}
	if m := strings.TrimSpace(r.Header.Get(HeaderModel)); m != "" {
		req.Models = append(req.Models, m)
		established = established || trusted
	}
	body, complete := readVerifyBody(r)
	models, known := access.ModelsInBody(r.Header.Get("Content-Type"), body)
	if !complete || !known {
		req.ModelsKnown = false
	}
	if len(models) > 0 {
		req.Models = append(req.Models, models...)
		established = true
	}
	if !established && access.ModelBearing(req.Method, req.Route) {
		req.ModelsKnown = false
	}
	return req
}

// readVerifyBody reads the forwarded body; complete is false when it was
// longer than maxVerifyBody or could not be read.
func readVerifyBody(r *http.Request) (body []byte, complete bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxVerifyBody+1))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || err != nil || len(b) > maxVerifyBody {
		return nil, false
	}
	return b, true
}

func firstHeader(r *http.Request, names []string) string {
	for _, n := range names {
		if v := r.Header.Get(n); v != "" {
			return v
		}
	}
	return ""
}

func truncateModel(m string) string {
	if len(m) > 80 {
		return m[:80]
	}
	return m
}
