package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/access"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/budget"
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
	// bodyLen and maxTokens size the estimate billed for an answer that
	// ends before it reports usage.
	bodyLen    int
	maxTokens  int64
	choices    int64
	mediaParts int64
	// tpmHeld is what the call took from the key's TPM bucket when it was
	// admitted (its estimate); metering replaces it with the real tokens.
	tpmHeld int64
	// done makes metering happen once, whichever of EOF and Close comes
	// first.
	done sync.Once
	// hold is the call's reservation against its budgets; released when
	// its spend is recorded (the recorder's settled callback), or at once
	// when the call is not metered.
	hold *budget.Hold
	// metered: finish handed the spend (and the hold) to the recorder.
	metered atomic.Bool
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
	// The ledger's epoch before the budget figures are read: costs
	// released after it may be missing from them (see budget.Ledger).
	since := p.ledger.Epoch()
	cred := auth.CredentialFromRequest(r, p.opts.SessionCookie)
	pr, err := p.opts.Authenticator.Authenticate(r.Context(), cred)
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
	c.bodyLen, c.maxTokens, c.choices, c.mediaParts = len(body), info.maxTokens, max(info.choices, 1), info.mediaParts
	c.listModels = r.Method == http.MethodGet && isModelList(r.URL.Path) && access.Restricted(pr)
	req := decisionRequest(r, body)
	if err := p.opts.Decide(pr, req); err != nil {
		p.fail(w, r, err)
		return
	}
	if access.AdminWrite(req) {
		// A write to the upstream's admin API outlives any cache window:
		// decide again on the credential as the database has it.
		cred.Fresh = true
		if pr, err = p.opts.Authenticator.Authenticate(r.Context(), cred); err == nil {
			err = p.opts.Decide(pr, req)
		}
		if err != nil {
			p.fail(w, r, err)
			return
		}
		c.principal = pr
	}
	if c.model == "" {
		if ms := access.ModelsInURL(r.URL.Path, r.URL.Query()); len(ms) > 0 {
			c.model = ms[len(ms)-1]
		}
	}
	if p.opts.FailClosed && c.model != "" && !p.rec.healthy() {
		p.fail(w, r, apperr.Unavailable("Usage cannot be recorded right now (the database is unavailable), so requests are refused; try again shortly."))
		return
	}
	prompt, output := p.estimatedTokens(c)
	held, err := p.limits.admit(pr, p.opts.Now(), prompt, output)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if held > 0 {
		c.tpmHeld = held
		// Metering (finish) settles the reservation with the real tokens;
		// a call that never got that far gives it back.
		defer c.done.Do(func() { p.limits.charge(pr, -held, p.opts.Now()) })
	}
	if pr.Access != nil && len(pr.Access.Budgets) > 0 {
		// Reserve what the call may cost before it is sent, so concurrent
		// calls cannot all pass a budget check each would pass alone.
		est := p.estimate(c)
		budgeted := pr
		hold, err := p.ledger.Reserve(pr.Access.Budgets, est, since)
		if errors.Is(err, budget.ErrStale) {
			// The figures are older than the ledger remembers (a body
			// read slowly): read them again.
			since = p.ledger.Epoch()
			if budgeted, err = p.opts.Authenticator.Authenticate(r.Context(), cred); err == nil {
				var budgets []auth.Budget
				if budgeted.Access != nil {
					budgets = budgeted.Access.Budgets
				}
				hold, err = p.ledger.Reserve(budgets, est, since)
			}
		}
		if err == nil && p.shared != nil {
			// This instance's ledger admits it; now every replica's holds
			// and the spend recorded in the database must.
			if serr := p.shared.Take(r.Context(), hold, budgeted, est); serr != nil {
				switch {
				case errors.Is(serr, budget.ErrUnshared) && !p.opts.FailClosed:
					p.log.Warn("upstream: budget reservation not shared with other replicas (database unavailable); this replica's own reservation holds the call",
						"err", serr)
				case errors.Is(serr, budget.ErrUnshared):
					hold.Release()
					err = apperr.Unavailable("The budget reservation cannot be made right now (the database is unavailable), so requests are refused; try again shortly.")
				default:
					hold.Release()
					err = serr
				}
			}
		}
		if err != nil {
			p.fail(w, r, err)
			return
		}
		c.hold = hold
		defer func() {
			if !c.metered.Load() {
				hold.Release() // nothing to bill: the call failed or named no model
			}
		}()
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

// decisionRequest is what the access decision needs to know about a
// forwarded request: the same reading of route and models as /auth/verify
// makes, from the exact bytes the upstream will receive.
func decisionRequest(r *http.Request, body []byte) access.Request {
	req := access.Request{Method: r.Method, Routes: access.RouteVariants(r.URL.EscapedPath()), RouteKnown: true, ModelsKnown: true}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		req.ModelsKnown = false
	}
	urlOnly, fromURL := false, false
	queried := access.ModelsInQuery(query) // ?model=
	req.Models = append(req.Models, queried...)
	for _, route := range req.Routes {
		urlOnly = urlOnly || access.URLModelOnly(route)
		inPath, queryCounts := access.URLModels(route)
		if inPath != "" {
			req.Models = append(req.Models, inPath)
		}
		// A ?model= must be allowed, but establishes the model only where
		// the upstream reads it (realtime).
		fromURL = fromURL || inPath != "" || queryCounts && len(queried) > 0
	}
	models, known := access.ModelsInBody(r.Header.Values("Content-Type"), body)
	req.Models = append(req.Models, models...)
	// On a provider route that reads its model from the path, a body's
	// model narrows but cannot establish it.
	established := fromURL || len(models) > 0 && !urlOnly
	if !known || (!established && req.ModelBearing()) {
		req.ModelsKnown = false
	}
	return req
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
		if identityLike(k) {
			delete(h, k)
		}
	}
	for _, k := range auth.CredentialHeaders() {
		h.Del(k)
	}
	stripCookies(h, func(name string) bool {
		return name == p.opts.SessionCookie || strings.HasPrefix(name, auth.CookiePrefix)
	})
	if p.opts.UpstreamKey != "" {
		h.Set("Authorization", "Bearer "+p.opts.UpstreamKey)
	}
	// Usage is read from the bodies, so they must arrive uncompressed.
	h.Set("Accept-Encoding", "identity")
	c := callFrom(pr.In.Context())
	if c == nil {
		return
	}
	id := access.IdentityOf(c.principal)
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set(HeaderUserID, id.UserID)
	set(HeaderUserRole, id.Role)
	set(HeaderKeyID, id.KeyID)
	set(HeaderTeamID, id.TeamID)
	set(HeaderKeyAlias, id.KeyAlias)
}

// identityLike reports whether a header name is, or could be taken by a
// server for, one of Keygate's identity headers: many servers (and CGI
// conventions) fold case and treat '_' as '-', so "X_keygate_user_role"
// must go as surely as "X-Keygate-User-Role".
func identityLike(name string) bool {
	if len(name) < len(HeaderPrefix) {
		return false
	}
	for i := 0; i < len(HeaderPrefix); i++ {
		a, b := name[i], HeaderPrefix[i]
		if a == '_' {
			a = '-'
		}
		if a|0x20 != b|0x20 { // ASCII case fold; '-' is unchanged by it
			return false
		}
	}
	return true
}

// stripCookies removes the cookies drop names (Keygate's own: the session
// cookie is a credential, the refresh cookie renews one) from the Cookie
// headers and keeps the others.
func stripCookies(h http.Header, drop func(name string) bool) {
	vals := h.Values("Cookie")
	if len(vals) == 0 {
		return
	}
	var kept []string
	for _, line := range vals {
		for _, part := range strings.Split(line, ";") {
			part = strings.TrimSpace(part)
			n, _, _ := strings.Cut(part, "=")
			if part == "" || drop(strings.TrimSpace(n)) {
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

// isModelList matches GET /v1/models and /models.
func isModelList(path string) bool {
	path = strings.TrimSuffix(path, "/")
	return path == "/models" || strings.HasSuffix(path, "/v1/models")
}

// isCompletions matches the endpoints whose streams take stream_options.
func isCompletions(path string) bool {
	return strings.HasSuffix(strings.TrimSuffix(path, "/"), "/completions")
}
