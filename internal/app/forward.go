package app

import (
	"context"
	"fmt"
	"github.com/keygate/keygate/api"
	"net/http"
	"net/url"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/httperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/upstream"
	"github.com/keygate/keygate/internal/websession"
	"github.com/keygate/keygate/store"
)

// Forwarding configures the optional forwarding mode (KEYGATE_UPSTREAM_*).
type Forwarding struct {
	// URL of the LLM proxy; nil disables forwarding.
	URL     *url.URL
	Key     string
	Timeout time.Duration
	// Paths forwarded (default upstream.DefaultPaths()).
	Paths []string
	// Prices per model, USD per million tokens.
	Prices map[string]upstream.Price
	// SpoolDir keeps spend on disk while the database cannot take it
	// (the data dir); empty keeps it in memory.
	SpoolDir string
	// FailClosed refuses metered requests while spend is not recorded.
	FailClosed bool
	// EstimateMaxTokens: see upstream.Options.
	EstimateMaxTokens int64
}

// buildForwarding creates the forwarding proxy when configured. It uses
// the same authenticators and the same access rules as /auth/verify, and
// records spend through the service layer (one transaction per batch with
// the budget totals; the service drops cached answers whose spend moved,
// so budgets bite at once).
func (a *App) buildForwarding(authn auth.Authenticator) error {
	f := a.opts.Forwarding
	if f.URL == nil {
		return nil
	}
	o := upstream.Options{Target: f.URL, UpstreamKey: f.Key, Timeout: f.Timeout, Paths: f.Paths,
		Authenticator: authn, Decide: service.Decide, Spend: usageRecorder{a.svc}, Prices: f.Prices, Logger: a.log, Now: a.opts.Now,
		SessionCookie: auth.DefaultSessionCookie, SpoolDir: f.SpoolDir, FailClosed: f.FailClosed, EstimateMaxTokens: f.EstimateMaxTokens}
	if a.opts.Notifier != nil {
		// Replicas share the database: they share reservations there too.
		o.SharedHolds = a.opts.Store
	}
	p, err := upstream.New(o)
	if err != nil {
		return fmt.Errorf("app: forwarding (KEYGATE_UPSTREAM_URL): %w", err)
	}
	a.forward = p
	return nil
}

// usageRecorder lets the proxy record through the service layer.
type usageRecorder struct{ svc *service.Service }

func (u usageRecorder) RecordSpendBatch(ctx context.Context, es []store.SpendEntry) ([]store.SpendEntry, error) {
	return u.svc.RecordUsage(ctx, es)
}

// route sends forwarded paths to the upstream proxy and everything else
// to Keygate's own routes.
func (a *App) route(own http.Handler) http.Handler {
	verify := a.api.VerifyHandler(a.metrics.HotObserver())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if api.IsVerifyPath(r.URL.Path) {
			// The hot path skips Gin (api.VerifyHandler).
			verify.ServeHTTP(w, r)
			return
		}
		if a.forward != nil && a.forward.Matches(r.URL.Path) {
			if err := api.URLText(r); err != nil {
				httperr.WriteHTTP(w, err)
				return
			}
			if err := a.checkForwardedCookie(r); err != nil {
				httperr.WriteHTTP(w, err)
				return
			}
			a.forward.ServeHTTP(w, r)
			return
		}
		own.ServeHTTP(w, r)
	})
}

// checkForwardedCookie holds forwarded requests to the rule every
// Keygate route follows: a state-changing request authenticated by the
// session cookie must be same-origin and carry the session's CSRF token
// in X-CSRF-Token (a cross-site page could otherwise spend the user's
// budget). Other
// credentials pass untouched, and an unusable cookie is left to the
// proxy's own 401.
func (a *App) checkForwardedCookie(r *http.Request) error {
	cred := auth.CredentialFromRequest(r, websession.SessionCookie)
	if !cred.FromCookie || r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
		return nil
	}
	p, err := a.authn.Authenticate(r.Context(), cred)
	if err != nil {
		return nil
	}
	return a.web.CheckWriteHeader(r, p) // the body is the upstream's: never parsed here
}

// Shutdown drains work that outlives requests (queued spend records,
// reset mail).
func (a *App) Shutdown(ctx context.Context) error {
	if err := a.svc.Drain(ctx); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	if a.forward == nil {
		return nil
	}
	if err := a.forward.Close(ctx); err != nil {
		return fmt.Errorf("app: drain forwarding: %w", err)
	}
	return nil
}
