// Package app is Keygate's composition root: it builds the service layer,
// the authenticators, the caches and both faces (api, ui) from plain
// options and returns one http.Handler. cmd/keygate maps the configuration
// onto Options; end-to-end tests build the very same App, so what is tested
// is what runs.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"github.com/google/uuid"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/api/scim"
	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/password"
	"github.com/keygate/keygate/auth/session"
	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/internal/metrics"
	"github.com/keygate/keygate/internal/mfa"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/upstream"
	"github.com/keygate/keygate/internal/websession"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/ui"
)

// FailClosedHeartbeat is how often the listener must prove its link alive
// (store.ListenAlive) under Options.CacheFailClosed; failClosedGrace is
// how long each proof keeps the cache in use: a link that freezes without
// breaking stops the cache's use within it.
const (
	FailClosedHeartbeat = time.Second
	failClosedGrace     = 3 * FailClosedHeartbeat
)

// Notifier carries cache invalidations between replicas (PostgreSQL
// LISTEN/NOTIFY). Nil means a single instance.
type Notifier interface {
	Notify(ctx context.Context, channel, payload string) error
	Listen(ctx context.Context, channel string, fn func(payload string)) error
}

// Options configures an App.
type Options struct {
	Store          store.Store
	Notifier       Notifier
	Logger         *slog.Logger
	Now            func() time.Time
	MasterKeyHash  [sha256.Size]byte
	TrustedProxies []string
	MaxBodyBytes   int64
	// CacheTTL bounds verification-cache staleness should an invalidation
	// be lost (default 30 s).
	CacheTTL time.Duration
	// CacheFailClosed: answers about existing keys and sessions are used
	// from the cache only while the Notifier's listener is subscribed and
	// has proved its link alive within failClosedGrace (its heartbeat,
	// FailClosedHeartbeat, must be set on the store); otherwise every
	// check reads the database, and fails while it cannot. Off, a replica
	// whose listener is down answers from its cache up to CacheTTL. Either
	// way nothing is answered from the cache before the listener first
	// subscribes.
	CacheFailClosed bool
	// LastActiveEvery is how often key last-active times are written
	// (default 10 s).
	LastActiveEvery time.Duration

	// Secret encrypts signing keys and derives CSRF tokens; empty disables
	// logins (they answer 503 naming KEYGATE_SECRET).
	Secret string
	// Issuer is the session tokens' iss and the JWKS base URL
	// (PROXY_BASE_URL, else http://localhost:<port>).
	Issuer       string
	JWTAlgorithm string
	TokenTTL     time.Duration
	SessionTTL   time.Duration
	// SigningKeyRotation is how often a new signing key is made.
	SigningKeyRotation    time.Duration
	PasswordLoginDisabled bool
	// PasswordParams overrides the argon2id cost (tests use a cheap one);
	// nil means the OWASP-level defaults.
	PasswordParams *password.Params
	// MaxConcurrentHashes bounds parallel password hashing (memory).
	MaxConcurrentHashes int
	// Hasher, when set, is used instead of one made from PasswordParams
	// and MaxConcurrentHashes (tests hold places in its queue).
	Hasher *password.Hasher
	// UIUsername / UIPassword bootstrap an admin account.
	UIUsername, UIPassword string
	// SecureCookies marks cookies Secure (TLS or https base URL).
	SecureCookies   bool
	LogoutURL       string
	LogoutAllowlist []string
	// MetricsToken, when set, is required as a bearer token on /metrics
	// (KEYGATE_METRICS_TOKEN); empty serves /metrics openly.
	MetricsToken string

	// BaseURL is the public base of every link that leaves the server
	// (PROXY_BASE_URL, or cmd's derivation from the listen address);
	// empty means Issuer. Never the request's Host.
	BaseURL       string
	InvitationTTL time.Duration
	// Mailer sends invitation and reset mail; nil disables e-mail. When it
	// can (service.SecurityMailer), it also tells users of every change to
	// their second factors.
	Mailer service.Mailer
	// MFARequiredRoles must have a second factor to sign in with a
	// password (KEYGATE_MFA_REQUIRED_ROLES).
	MFARequiredRoles []string

	// SSOProviders are the configured identity providers; SSOPolicy
	// decides linking, provisioning and roles.
	SSOProviders []sso.Provider
	SSOPolicy    service.SSOPolicy

	// Forwarding turns on forwarding mode when its URL is set.
	Forwarding Forwarding
	// LLMBaseURL is where applications send their API calls (the
	// OpenAI base URL, KEYGATE_LLM_BASE_URL), shown with every new key;
	// empty means BaseURL + "/v1" in forwarding mode, else unknown.
	LLMBaseURL string

	// Sleep is how logins from a client address with many recent failures
	// wait (default: a timer); tests replace it to observe the slow-down.
	Sleep func(ctx context.Context, d time.Duration) error
}

// App is a wired Keygate.
type App struct {
	opts     Options
	log      *slog.Logger
	handler  http.Handler
	keyAuth  *auth.KeyAuthenticator
	sessAuth *auth.SessionAuthenticator
	keyring  *session.Keyring
	sealer   *session.Sealer
	hasher   *password.Hasher
	svc      *service.Service
	forward  *upstream.Proxy
	api      *api.Server
	ui       *ui.UI
	web      *websession.Manager
	authn    auth.Authenticator
	metrics  *metrics.Metrics

	// draining is set when shutdown begins: readiness answers 503 from
	// then on, so load balancers stop sending.
	draining atomic.Bool

	wg sync.WaitGroup
	// instance tells this replica's own notifications from others'.
	instance string
}

// invalidationChannel is the NOTIFY channel for cache invalidations.
const invalidationChannel = "keygate_invalidate"

// New wires an App. Background work starts with Run.
func New(ctx context.Context, o Options) (*App, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LastActiveEvery == 0 {
		o.LastActiveEvery = 10 * time.Second
	}
	if o.MaxConcurrentHashes == 0 {
		o.MaxConcurrentHashes = 2
	}
	a := &App{opts: o, log: o.Logger, instance: uuid.NewString()}
	a.keyAuth = auth.NewKeyAuthenticator(auth.KeyAuthOptions{Store: o.Store, Now: o.Now, Logger: o.Logger, TTL: o.CacheTTL})
	params := password.DefaultParams()
	if o.PasswordParams != nil {
		params = *o.PasswordParams
	}
	hasher := o.Hasher
	if hasher == nil {
		var err error
		if hasher, err = password.New(params, o.MaxConcurrentHashes); err != nil {
			return nil, fmt.Errorf("app: password hasher: %w", err)
		}
	}
	a.hasher = hasher
	authn := auth.Chain{auth.NewMasterKey(o.MasterKeyHash), a.keyAuth}
	sessOpts := service.SessionOptions{TTL: o.SessionTTL, PasswordLoginDisabled: o.PasswordLoginDisabled, Sleep: o.Sleep}
	sessCfg := api.SessionConfig{Secure: o.SecureCookies, Issuer: o.Issuer}
	if o.BaseURL == "" {
		o.BaseURL = o.Issuer
		a.opts.BaseURL = o.Issuer
	}
	if o.Secret != "" {
		issuer, err := a.buildSessions(ctx, o)
		if err != nil {
			return nil, err
		}
		sessOpts.Tokens = issuer
		a.sessAuth = auth.NewSessionAuthenticator(o.Store, issuer, auth.NewCache(cacheTTL(o.CacheTTL), 5*time.Second, 0, o.Now), o.Now)
		authn = append(authn, a.sessAuth)
		sessCfg.JWKS = func(ctx context.Context) any { return a.keyring.JWKS(ctx) }
	} else {
		o.Logger.Warn("KEYGATE_SECRET is not set: logins and session tokens are disabled")
	}
	a.metrics = metrics.New(metrics.Options{Token: o.MetricsToken, DB: metrics.DBOf(o.Store)})
	instrumented := a.metrics.InstrumentStore(o.Store)
	channel := ""
	if o.Notifier != nil {
		channel = invalidationChannel
	}
	a.svc = service.New(service.Options{Store: instrumented, Now: o.Now, Logger: o.Logger, Passwords: hasher, Sessions: sessOpts,
		Invitations:         service.InvitationOptions{TTL: o.InvitationTTL, BaseURL: o.BaseURL, Mailer: o.Mailer},
		MFA:                 a.mfaOptions(o),
		Directory:           service.DirectoryPolicy{RoleMapping: o.SSOPolicy.RoleMapping},
		Hooks:               service.Hooks{Invalidate: func(_ context.Context, c service.Changes) { a.drop(c) }},
		InvalidationChannel: channel, InstanceID: a.instance,
		ReservedKey: auth.NewMasterKey(o.MasterKeyHash).Is})
	ssoCfg := api.SSOConfig{Providers: o.SSOProviders, Policy: o.SSOPolicy, Now: o.Now}
	if len(o.SSOProviders) > 0 {
		if o.Secret == "" {
			return nil, fmt.Errorf("app: SSO needs KEYGATE_SECRET (or LITELLM_SALT_KEY) to protect the sign-in flow")
		}
		codec, err := sso.NewStateCodec(derive(o.Secret, "keygate-sso-flow-v1"))
		if err != nil {
			return nil, fmt.Errorf("app: sso: %w", err)
		}
		ssoCfg.Codec = codec
	}
	if o.UIPassword != "" {
		if err := a.svc.EnsureBootstrapAdmin(ctx, o.UIUsername, o.UIPassword); err != nil {
			return nil, fmt.Errorf("app: bootstrap admin (UI_USERNAME/UI_PASSWORD): %w", err)
		}
	}
	trusted, err := trustedPeer(o.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("app: trusted proxies: %w", err)
	}
	a.authn = authn
	wo := websession.Options{Authenticator: authn, Sessions: a.svc, Key: []byte(o.Secret), Secure: o.SecureCookies, BaseURL: o.BaseURL,
		LogoutURL: o.LogoutURL, LogoutAllowlist: o.LogoutAllowlist, Providers: o.SSOProviders, Now: o.Now}
	if a.sessAuth != nil {
		wo.Refresher = a.sessAuth
	}
	if a.web, err = websession.New(wo); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	a.api = api.New(api.Options{Logger: o.Logger, Authenticator: authn, Web: a.web, Ready: a.ready, TrustedPeer: trusted,
		Users: a.svc, Teams: a.svc, Keys: a.svc, Spend: a.svc, Sessions: a.svc, Session: sessCfg, Invitations: a.svc, Audit: a.svc,
		SSOOps: a.svc, SSO: ssoCfg, MFA: a.svc, BaseURL: o.BaseURL, LogoutURL: o.LogoutURL})
	a.api.OnUserInfo(a.userInfoKeys)
	a.api.OnTeamInfo(a.teamInfoKeys)
	engine, err := api.NewEngine(api.EngineOptions{Logger: o.Logger, TrustedProxies: o.TrustedProxies,
		MaxBodyBytes: o.MaxBodyBytes, LogAll: quietHotPath, Shape: scim.Shape(), Observe: a.metrics.ObserveHTTP})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	a.metrics.AddCache("api_key", a.keyAuth.Cache().Stats)
	a.metrics.AddCacheTrust("api_key", a.keyAuth.Cache().Trusted)
	if a.sessAuth != nil {
		a.metrics.AddCache("session", a.sessAuth.Cache().Stats)
		a.metrics.AddCacheTrust("session", a.sessAuth.Cache().Trusted)
	}
	a.api.Add(api.PublicHTTP(http.MethodGet, "/metrics", a.metrics.Handler()))
	a.api.Add(scim.New(scim.Options{Ops: a.svc, BaseURL: o.BaseURL}).Routes()...)
	pages, err := a.newUI()
	if err != nil {
		return nil, err
	}
	engine.Use(pages.ErrorPages())
	a.api.Mount(engine)
	pages.Mount(engine)
	a.ui = pages
	if err := a.buildForwarding(authn); err != nil {
		return nil, err
	}
	a.handler = a.route(engine)
	return a, nil
}

// newUI builds the web pages, served beside the API on the same engine.
func (a *App) newUI() (*ui.UI, error) {
	o := a.opts
	uo := ui.Options{Logger: o.Logger, Service: a.svc, Web: a.web, SecureCookies: o.SecureCookies,
		PasswordLoginDisabled: o.PasswordLoginDisabled, Now: o.Now, BaseURL: o.BaseURL, LLMBaseURL: o.LLMBaseURL}
	if uo.LLMBaseURL == "" && o.Forwarding.URL != nil {
		// Forwarding mode: applications call this server, which forwards
		// /v1/* upstream.
		uo.LLMBaseURL = strings.TrimSuffix(o.BaseURL, "/") + "/v1"
	}
	for _, p := range o.SSOProviders {
		uo.SSOProviders = append(uo.SSOProviders, ui.SSOProvider{Name: p.Name(), DisplayName: p.DisplayName(), URL: "/sso/login/" + p.Name()})
	}
	u, err := ui.New(uo)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return u, nil
}

func cacheTTL(d time.Duration) time.Duration {
	if d == 0 {
		return 30 * time.Second
	}
	return d
}

// buildSessions sets up signing keys (shared by all replicas through the
// store, private parts sealed with the secret) and the token issuer.
func (a *App) buildSessions(ctx context.Context, o Options) (*session.Issuer, error) {
	sealer, err := session.NewSealer(o.Secret)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	a.sealer = sealer
	kr, err := session.NewKeyring(o.Store, sealer, session.KeyringOptions{Algorithm: o.JWTAlgorithm,
		RotateEvery: o.SigningKeyRotation, TokenTTL: o.TokenTTL, Now: o.Now})
	if err != nil {
		return nil, fmt.Errorf("app: signing keys: %w", err)
	}
	if err := kr.Ensure(ctx); err != nil {
		return nil, fmt.Errorf("app: signing keys: %w", err)
	}
	a.keyring = kr
	issuer, err := session.NewIssuer(kr, session.IssuerOptions{Issuer: o.Issuer})
	if err != nil {
		return nil, fmt.Errorf("app: session issuer: %w", err)
	}
	return issuer, nil
}

// mfaOptions configures second factors: TOTP secrets sealed like the
// signing keys, passkeys bound to the configured base URL's host (off when
// it has none: browsers refuse an IP address), notices by mail.
func (a *App) mfaOptions(o Options) service.MFAOptions {
	mo := service.MFAOptions{RequiredRoles: o.MFARequiredRoles}
	if a.sealer != nil {
		mo.Sealer = a.sealer
	}
	if rp, err := mfa.NewRP(o.BaseURL, "Keygate"); err == nil {
		mo.RP = rp
	} else if a.sealer != nil {
		o.Logger.Warn("passkeys are off", "reason", err.Error())
	}
	if m, ok := o.Mailer.(service.SecurityMailer); ok {
		mo.Mailer = m
	}
	return mo
}

// trustedPeer returns a test of whether a request's TCP peer is one of
// the trusted proxies (IPs or CIDRs).
func trustedPeer(list []string) (func(*http.Request) bool, error) {
	var prefixes []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			prefixes = append(prefixes, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR", s)
		}
		prefixes = append(prefixes, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
	}
	if len(prefixes) == 0 {
		return nil, nil
	}
	return func(r *http.Request) bool {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			return false
		}
		ip := ap.Addr().Unmap()
		for _, p := range prefixes {
			if p.Contains(ip) {
				return true
			}
		}
		return false
	}, nil
}

// derive makes an independent key for one purpose from the operator secret.
func derive(secret, purpose string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// quietHotPath keeps successful /auth/verify calls out of the access log:
// at tens of thousands of requests per second the log would dominate.
func quietHotPath(r *http.Request) bool { return !strings.HasPrefix(r.URL.Path, "/auth/verify") }

// ready is the readiness check: not while shutting down, else the
// database must answer.
func (a *App) ready(ctx context.Context) error {
	if a.draining.Load() {
		return api.ErrShuttingDown
	}
	return a.opts.Store.Ping(ctx)
}

// SetDraining makes readiness answer 503 from now on (shutdown has begun).
func (a *App) SetDraining() { a.draining.Store(true) }

// Handler is the HTTP handler serving everything.
func (a *App) Handler() http.Handler { return a.handler }

// Service exposes the operations (admin CLI subcommands use it).
func (a *App) Service() *service.Service { return a.svc }

// API exposes the route table (tests walk it).
func (a *App) API() *api.Server { return a.api }

// UI exposes the pages' route table (tests walk it).
func (a *App) UI() *ui.UI { return a.ui }

// Run starts background work (last-active flushing, cross-replica
// invalidation) and returns at once; it stops when ctx ends. Wait waits.
func (a *App) Run(ctx context.Context) {
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		a.keyAuth.RunLastActive(ctx, a.opts.LastActiveEvery)
	}()
	go func() {
		defer a.wg.Done()
		a.resetBudgets(ctx, time.Minute)
	}()
	if a.keyring != nil {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.rotateSigningKeys(ctx)
		}()
	}
	if a.opts.Notifier != nil {
		// Until the listener has subscribed, a change made on another
		// replica would go unheard.
		a.setUnheard(true)
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			err := a.opts.Notifier.Listen(ctx, invalidationChannel, a.applyInvalidation)
			if err != nil && ctx.Err() == nil {
				a.log.Error("cache invalidation listener stopped", "err", err)
			}
		}()
	}
}

// rotateSigningKeys makes a new signing key when the current one is due,
// checking hourly on every replica (the keyring tolerates races).
func (a *App) rotateSigningKeys(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if rotated, err := a.keyring.RotateIfDue(ctx); err != nil {
				a.log.Error("signing key rotation", "err", err)
			} else if rotated {
				a.log.Info("rotated the session signing key")
			}
		}
	}
}

// RotateSigningKey makes a new signing key now (admin CLI, tests).
func (a *App) RotateSigningKey(ctx context.Context) error {
	if a.keyring == nil {
		return fmt.Errorf("app: sessions are disabled (no KEYGATE_SECRET)")
	}
	return a.keyring.Rotate(ctx)
}

// Wait blocks until the background work started by Run has stopped.
func (a *App) Wait() { a.wg.Wait() }

// drop removes cached answers about what changed from this replica.
func (a *App) drop(c service.Changes) {
	kc := a.keyAuth.Cache()
	kc.Invalidate(c.Keys...)
	for _, u := range c.Users {
		kc.InvalidateUser(u)
	}
	for _, t := range c.Teams {
		kc.InvalidateTeam(t)
	}
	for _, sp := range c.Spent {
		kc.AddSpend(sp)
	}
	if a.sessAuth == nil {
		return
	}
	sc := a.sessAuth.Cache()
	sc.Invalidate(c.Sessions...)
	for _, u := range c.Users {
		sc.InvalidateUser(u)
	}
	for _, sp := range c.Spent {
		sc.AddSpend(sp)
	}
}

// applyInvalidation handles an invalidation published by any replica
// (this one included: PostgreSQL delivers a replica's own notifications).
// Recorded spend from this replica was applied at commit already: raising
// the figures again would count it twice.
func (a *App) applyInvalidation(payload string) {
	switch payload {
	case store.ListenSubscribed:
		// Changes made before were not heard: drop everything, then
		// trust the cache again (a load begun before the drop is not
		// stored).
		a.keyAuth.Cache().Clear()
		if a.sessAuth != nil {
			a.sessAuth.Cache().Clear()
		}
		a.trustCache()
		return
	case store.ListenAlive:
		a.trustCache()
		return
	case store.ListenLost:
		if a.opts.CacheFailClosed {
			a.setUnheard(true)
			a.log.Warn("cache not used until the change listener reconnects: every key and session is checked in the database (KEYGATE_CACHE_FAIL_CLOSED)")
		}
		return
	}
	if a.opts.CacheFailClosed {
		a.trustCache() // a notification proves the link alive too
	}
	c := service.DecodeChanges(payload)
	if c.Origin == a.instance {
		c.Spent = nil
	}
	a.drop(c)
}

// trustCache puts the caches back in use after the listener subscribed or
// proved its link alive: for good, or under CacheFailClosed until the
// next proof is due.
func (a *App) trustCache() {
	if !a.opts.CacheFailClosed {
		a.setUnheard(false)
		return
	}
	until := a.opts.Now().Add(failClosedGrace)
	a.keyAuth.Cache().TrustUntil(until)
	if a.sessAuth != nil {
		a.sessAuth.Cache().TrustUntil(until)
	}
}

// setUnheard marks both caches as (not) hearing other replicas' changes.
func (a *App) setUnheard(unheard bool) {
	a.keyAuth.Cache().SetUnheard(unheard)
	if a.sessAuth != nil {
		a.sessAuth.Cache().SetUnheard(unheard)
	}
}

// KeyCacheStats reports the API-key cache's hits and misses (tests).
func (a *App) KeyCacheStats() (hits, misses uint64) { return a.keyAuth.Cache().Stats() }

// DummyVerifications counts password checks run against the dummy hash
// (unknown users), so tests can prove the equal-time path ran.
func (a *App) DummyVerifications() uint64 { return a.hasher.DummyVerifications() }
