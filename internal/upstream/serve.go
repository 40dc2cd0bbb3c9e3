package upstream

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httputil"
	"path"
	"strings"
	"sync"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
)

// call is what the proxy knows about one forwarded request; it travels in
// the request context from ServeHTTP to Rewrite, ModifyResponse and the
// metering body.
type call struct {
	principal auth.Principal
	model     string
	// strip: the proxy added stream_options.include_usage, so the
	// usage-only chunk is not the client's to see.
	strip bool
	// listModels: a GET of the model list whose entries must be filtered.
	listModels bool
	// done makes metering happen once, whichever of EOF and Close comes
	// first.
	done sync.Once
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// ServeHTTP authenticates, checks and forwards one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.Matches(r.URL.Path) || !isClean(r.URL.Path) {
		// Dot segments and doubled slashes are refused rather than
		// forwarded: the upstream may resolve /v1/../key/generate to a
		// route outside the forwarded prefixes, with Keygate's upstream
		// key attached.
		p.fail(w, r, apperr.NotFound("Not found."))
		return
	}
	pr, err := p.opts.Authenticator.Authenticate(r.Context(), auth.CredentialFromRequest(r, p.opts.SessionCookie))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	c := &call{principal: pr}
	body, err := p.readBody(r)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	var info bodyInfo
	if len(body) > 0 {
		info, err = inspectBody(body, r.Header.Get("Content-Type"), r.URL.Path)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		if info.rewritten != nil {
			body = info.rewritten
		}
	}
	c.model, c.strip = info.model, info.strip
	c.listModels = r.Method == http.MethodGet && isModelList(r.URL.Path) && restricted(pr)
	pm := modelFromPath(r.URL.Path)
	if c.model == "" {
		c.model = pm
	}
	if err := p.opts.Check(pr, c.model); err != nil {
		p.fail(w, r, err)
		return
	}
	if pm != "" && pm != c.model {
		// Both name a model and the upstream may go by either.
		if err := p.opts.Check(pr, pm); err != nil {
			p.fail(w, r, err)
			return
		}
	}
	if c.model == "" && info.opaque && restricted(pr) {
		// The body may name a model in a form we cannot read; a caller
		// limited to some models must not get past the check that way.
		p.fail(w, r, apperr.Forbidden("Cannot tell which model this request uses; this key may use only some models."))
		return
	}
	if p.opts.FailClosed && c.model != "" && !p.rec.healthy() {
		p.fail(w, r, apperr.Unavailable("Usage cannot be recorded right now (the database is unavailable), so requests are refused; try again shortly."))
		return
	}
	if err := p.limits.admit(pr, p.opts.Now()); err != nil {
		p.fail(w, r, err)
		return
	}
	out := r.WithContext(context.WithValue(r.Context(), callKey{}, c))
	if r.Body != nil && r.Body != http.NoBody {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.TransferEncoding = nil
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	p.rp.ServeHTTP(w, out)
}

// readBody reads the whole request body, refusing more than MaxBodyBytes.
func (p *Proxy) readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	max := p.opts.MaxBodyBytes
	if r.ContentLength > max {
		return nil, tooLarge(max)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, apperr.Invalid("Could not read the request body.").Wrap(err)
	}
	if int64(len(b)) > max {
		return nil, tooLarge(max)
	}
	return b, nil
}

func tooLarge(max int64) error {
	return &apperr.Error{Kind: apperr.KindTooLarge, Message: "Request body too large: the limit is " + byteSize(max) + "."}
}

// rewrite is the ReverseProxy's Rewrite: point the request at the
// upstream and replace every credential and identity header.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.opts.Target)
	pr.SetXForwarded()
	h := pr.Out.Header
	for k := range h {
		if len(k) >= len(HeaderPrefix) && strings.EqualFold(k[:len(HeaderPrefix)], HeaderPrefix) {
			delete(h, k)
		}
	}
	for _, k := range auth.CredentialHeaders() {
		h.Del(k)
	}
	stripCookie(h, p.opts.SessionCookie)
	if p.opts.UpstreamKey != "" {
		h.Set("Authorization", "Bearer "+p.opts.UpstreamKey)
	}
	// Usage is read from the bodies, so they must arrive uncompressed.
	h.Set("Accept-Encoding", "identity")
	c := callFrom(pr.In.Context())
	if c == nil {
		return
	}
	a := c.principal
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set(HeaderUserID, a.UserID)
	set(HeaderUserRole, string(a.Role))
	set(HeaderKeyID, a.KeyHash)
	team := a.KeyTeamID
	if team == "" && len(a.TeamIDs) > 0 {
		team = a.TeamIDs[0]
	}
	set(HeaderTeamID, team)
	set(HeaderKeyAlias, a.KeyAlias)
}

// stripCookie removes Keygate's session cookie (a credential) from the
// Cookie headers and keeps the others.
func stripCookie(h http.Header, name string) {
	vals := h.Values("Cookie")
	if name == "" || len(vals) == 0 {
		return
	}
	var kept []string
	for _, line := range vals {
		for _, part := range strings.Split(line, ";") {
			part = strings.TrimSpace(part)
			n, _, _ := strings.Cut(part, "=")
			if part == "" || strings.TrimSpace(n) == name {
				continue
			}
			kept = append(kept, part)
		}
	}
	h.Del("Cookie")
	if len(kept) > 0 {
		h.Set("Cookie", strings.Join(kept, "; "))
	}
}

// isClean reports whether p is already in canonical form.
func isClean(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// restricted reports whether the principal may use only some models.
func restricted(p auth.Principal) bool {
	a := p.Access
	return a != nil && len(a.KeyModels)+len(a.UserModels)+len(a.TeamModels) > 0
}

// isModelList matches GET /v1/models and /models.
func isModelList(path string) bool {
	path = strings.TrimSuffix(path, "/")
	return path == "/models" || strings.HasSuffix(path, "/v1/models")
}

// modelFromPath returns a model the path names: /v1/models/{id} (ids
// may contain slashes, as in "openai/gpt-4o") or the {m} of Azure-style
// .../deployments/{m}/... and .../engines/{m}/... routes, which LiteLLM
// also serves.
func modelFromPath(path string) string {
	for _, pre := range []string{"/v1/models/", "/models/"} {
		if strings.HasPrefix(path, pre) {
			return path[len(pre):]
		}
	}
	for _, seg := range []string{"/deployments/", "/engines/"} {
		if i := strings.Index(path, seg); i >= 0 {
			m, _, _ := strings.Cut(path[i+len(seg):], "/")
			return m
		}
	}
	return ""
}

// isCompletions matches the endpoints whose streams take stream_options.
func isCompletions(path string) bool {
	return strings.HasSuffix(strings.TrimSuffix(path, "/"), "/completions")
}
