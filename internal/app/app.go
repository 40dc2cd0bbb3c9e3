// Package app is Keygate's composition root: it builds the service layer,
// the authenticators, the caches and both faces (api, ui) from plain
// options and returns one http.Handler. cmd/keygate maps the configuration
// onto Options; end-to-end tests build the very same App, so what is tested
// is what runs.
package app

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/store"
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
	// LastActiveEvery is how often key last-active times are written
	// (default 10 s).
	LastActiveEvery time.Duration
}

// App is a wired Keygate.
type App struct {
	opts    Options
	log     *slog.Logger
	handler http.Handler
	keyAuth *auth.KeyAuthenticator
	svc     *service.Service
	api     *api.Server

	wg sync.WaitGroup
}

// invalidationChannel is the NOTIFY channel for cache invalidations.
const invalidationChannel = "keygate_invalidate"

// New wires an App. Background work starts with Run.
func New(o Options) (*App, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LastActiveEvery == 0 {
		o.LastActiveEvery = 10 * time.Second
	}
	a := &App{opts: o, log: o.Logger}
	a.keyAuth = auth.NewKeyAuthenticator(auth.KeyAuthOptions{Store: o.Store, Now: o.Now, Logger: o.Logger, TTL: o.CacheTTL})
	a.svc = service.New(service.Options{Store: o.Store, Now: o.Now, Logger: o.Logger, Hooks: service.Hooks{
		KeysChanged: a.keysChanged, UserChanged: a.userChanged,
	}})
	authn := auth.Chain{auth.NewMasterKey(o.MasterKeyHash), a.keyAuth}
	a.api = api.New(api.Options{Logger: o.Logger, Authenticator: authn, Ready: o.Store.Ping,
		Users: a.svc, Teams: a.svc, Keys: a.svc, Spend: a.svc})
	a.api.OnUserCreated(a.autoCreateKey)
	a.api.OnUserInfo(a.userInfoKeys)
	a.api.OnTeamInfo(a.teamInfoKeys)
	engine, err := api.NewEngine(api.EngineOptions{Logger: o.Logger, TrustedProxies: o.TrustedProxies,
		MaxBodyBytes: o.MaxBodyBytes, LogAll: quietHotPath})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	a.api.Mount(engine)
	a.handler = engine
	return a, nil
}

// quietHotPath keeps successful /auth/verify calls out of the access log:
// at tens of thousands of requests per second the log would dominate.
func quietHotPath(r *http.Request) bool { return !strings.HasPrefix(r.URL.Path, "/auth/verify") }

// Handler is the HTTP handler serving everything.
func (a *App) Handler() http.Handler { return a.handler }

// Service exposes the operations (admin CLI subcommands use it).
func (a *App) Service() *service.Service { return a.svc }

// API exposes the route table (tests walk it).
func (a *App) API() *api.Server { return a.api }

// Run starts background work (last-active flushing, cross-replica
// invalidation) and returns at once; it stops when ctx ends. Wait waits.
func (a *App) Run(ctx context.Context) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.keyAuth.RunLastActive(ctx, a.opts.LastActiveEvery)
	}()
	if a.opts.Notifier != nil {
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

// Wait blocks until the background work started by Run has stopped.
func (a *App) Wait() { a.wg.Wait() }

func (a *App) keysChanged(ctx context.Context, hashes ...string) {
	a.keyAuth.Cache().Invalidate(hashes...)
	for _, h := range hashes {
		a.publish(ctx, "k:"+h)
	}
}

func (a *App) userChanged(ctx context.Context, userID string) {
	a.keyAuth.Cache().InvalidateUser(userID)
	a.publish(ctx, "u:"+userID)
}

func (a *App) publish(ctx context.Context, payload string) {
	if a.opts.Notifier == nil {
		return
	}
	if err := a.opts.Notifier.Notify(context.WithoutCancel(ctx), invalidationChannel, payload); err != nil {
		// The TTL still bounds staleness; say so loudly.
		a.log.Error("publish cache invalidation", "err", err)
	}
}

// applyInvalidation handles an invalidation published by any replica.
func (a *App) applyInvalidation(payload string) {
	kind, id, ok := strings.Cut(payload, ":")
	if !ok {
		return
	}
	switch kind {
	case "k":
		a.keyAuth.Cache().Invalidate(id)
	case "u":
		a.keyAuth.Cache().InvalidateUser(id)
	}
}
