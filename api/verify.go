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
// nginx (X-Original-*) and Traefik (X-Forwarded-*). They are written in
// canonical form and read by indexing the header map: Header.Get would
// canonicalize the constant again on every request.
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
func (s *Server) verify(c *gin.Context) error { return s.serveVerify(c.Writer, c.Request) }

// serveVerify answers one forward-auth request, or returns the error to
// answer with. It is the body of both the Gin route and VerifyHandler.
func (s *Server) serveVerify(w http.ResponseWriter, r *http.Request) error {
	cred := auth.CredentialFromRequest(r, s.opts.SessionCookie)
	p, err := s.opts.Authenticator.Authenticate(r.Context(), cred)
	if err != nil {
		return err
	}
	req := s.verifyRequest(r, p)
	if err := service.Decide(p, req); err != nil {
		return err
	}
	if access.AdminWrite(req) {
		// A write to the upstream's admin API outlives any cache window:
		// decide again on the credential as the database has it.
		cred.Fresh = true
		if p, err = s.opts.Authenticator.Authenticate(r.Context(), cred); err != nil {
			return err
		}
		if err := service.Decide(p, s.verifyRequest(r, p)); err != nil {
			return err
		}
	}
	// The values are built once per cached principal (they are the
	// access.IdentityOf fields), so no slice is allocated per request.
	v := p.HeaderValues()
	h := w.Header()
	h[HeaderUserID] = v[0]
	h[HeaderUserRole] = v[1]
	h[HeaderKeyID] = v[2]
	h[HeaderTeamID] = v[3]
	h[HeaderKeyAlias] = v[4]
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	h["Content-Type"] = s.jsonType
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, verifyOK)
	return nil
}

// verifyRequest works out what the proxy asks about: the client's routes
// and method, and every model the request names.
//
// The route comes from the path after /auth/verify (Envoy's path_prefix),
// from ?path= (deploy/envoy), and from X-Original-URI (nginx) and
// X-Forwarded-Uri (Traefik). The headers establish the route only from a
// trusted proxy; from anyone else they are still checked, so they can only
// narrow. Each route counts in every form an upstream may read it
// (percent-decoded, cleaned). Models come from the forwarded body, each
// route's path and query, verify's own ?model=, and X-Keygate-Model (every
// line, comma-separated): the header always counts as a model to check; it
// establishes the model only when a trusted proxy sent it, because a client
// can send it too and plain auth_request shows Keygate no body to compare.
func (s *Server) verifyRequest(r *http.Request, p auth.Principal) access.Request {
	trusted := s.opts.TrustedPeer != nil && s.opts.TrustedPeer(r)
	req := access.Request{Method: r.Method, ModelsKnown: true}
	// believed: the source is the request itself or a trusted proxy, so
	// what it names establishes the route and the model; a claim only
	// narrows.
	type source struct {
		uri      string
		believed bool
	}
	var uris []source
	if suffix := strings.TrimPrefix(r.URL.EscapedPath(), "/auth/verify"); suffix != "" && suffix != "/" {
		uri := suffix
		if r.URL.RawQuery != "" {
			uri += "?" + r.URL.RawQuery
		}
		uris = append(uris, source{uri, true})
	} else if rest, ok := strings.CutPrefix(r.URL.RawQuery, "path="); ok {
		uris = append(uris, source{rest, true})
	}
	for _, h := range routeHeaders {
		for _, v := range r.Header[h] {
			if v != "" {
				uris = append(uris, source{v, trusted})
			}
		}
	}
	// The method: a trusted proxy's header settles it; every method header
	// is checked anyway, so an untrusted one (or a second one) can only
	// narrow. Without a trusted header the subrequest's own method may be
	// the proxy's GET rather than the client's.
	req.MethodUnsure = true
	if trusted {
		// Only the method header of the same proxy family as the route
		// header it sent settles it (nginx: X-Original-URI with
		// X-Original-Method; Traefik: X-Forwarded-Uri with
		// X-Forwarded-Method): an nginx that sets only X-Original-URI
		// passes the client's own X-Forwarded-Method through (an outside
		// test made a chat call a GET that way). And only one standard
		// method: a proxy that appends its value to the client's
		// ("POST, GET") or passes on junk leaves the method unknown.
		for i, uh := range routeHeaders {
			if len(r.Header[uh]) == 0 {
				continue
			}
			if vs := r.Header[methodHeaders[i]]; len(vs) > 0 {
				if m := strings.ToUpper(strings.TrimSpace(vs[0])); standardMethod(m) {
					req.Method, req.MethodUnsure = m, false
				}
			}
			break
		}
	}
	for _, h := range methodHeaders {
		for _, line := range r.Header.Values(h) {
			for v := range strings.SplitSeq(line, ",") {
				if v = strings.ToUpper(strings.TrimSpace(v)); v != "" && v != req.Method {
					req.MethodClaims = append(req.MethodClaims, v)
				}
			}
		}
	}
	established := false
	queryModelRoute := false // a route whose upstream takes ?model= (realtime)
	for _, src := range uris {
		route, query, ok := access.SplitRoute(src.uri)
		if !ok {
			req.ModelsKnown = false
		}
		req.RouteKnown = req.RouteKnown || src.believed
		queried := access.ModelsInQuery(query) // the route's ?model=
		req.Models = append(req.Models, queried...)
		for _, v := range access.RouteVariants(route) {
			req.Routes = append(req.Routes, v)
			inPath, queryCounts := access.URLModels(v)
			if inPath != "" {
				req.Models = append(req.Models, inPath)
			}
			if inPath != "" || queryCounts && len(queried) > 0 {
				established = established || src.believed
			}
			queryModelRoute = queryModelRoute || queryCounts
		}
	}
	// On a provider route that reads its model from the path, the other
	// places still narrow but cannot establish it.
	urlOnly := false
	for _, rt := range req.Routes {
		urlOnly = urlOnly || access.URLModelOnly(rt)
	}
	own, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		req.ModelsKnown = false
	}
	for _, m := range own["model"] {
		if m != "" {
			req.Models = append(req.Models, m)
			// Verify's own ?model= names a model that must be allowed; it
			// establishes one only for a route that takes its model there
			// (with Envoy's path_prefix the client writes this query).
			established = established || queryModelRoute && !urlOnly
		}
	}
	if !access.Restricted(p) {
		// No model rule applies: skip reading the body.
		return req
	}
	for _, line := range r.Header.Values(HeaderModel) {
		for _, m := range strings.Split(line, ",") {
			if m = strings.TrimSpace(m); m != "" {
				req.Models = append(req.Models, m)
				established = established || trusted && !urlOnly
			}
		}
	}
	body, complete := readVerifyBody(r)
	models, known := access.ModelsInBody(r.Header.Values("Content-Type"), body)
	if !complete || !known {
		req.ModelsKnown = false
	}
	if len(models) > 0 {
		req.Models = append(req.Models, models...)
		established = established || !urlOnly
	}
	if !established && req.ModelBearing() {
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

func standardMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return true
	}
	return false
}

func truncateModel(m string) string {
	if len(m) > 80 {
		return m[:80]
	}
	return m
}
