package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/access"
	"github.com/keygate/keygate/internal/budget"
	"github.com/keygate/keygate/store"
)

// Defaults for Options fields left zero.
const (
	// DefaultTimeout bounds the wait for the upstream's response headers.
	// A non-streaming completion sends its headers only when the whole
	// answer is generated, so this is generous.
	DefaultTimeout = 10 * time.Minute
	// DefaultMaxBodyBytes caps a request body (it is read to find the
	// model); larger bodies get 413.
	DefaultMaxBodyBytes = 10 << 20
	// DefaultSpendQueue and DefaultSpendWorkers size the asynchronous
	// spend recorder.
	DefaultSpendQueue = 1024
	// DefaultEstimateMaxTokens is Options.EstimateMaxTokens's default.
	DefaultEstimateMaxTokens = 1024
	DefaultSpendWorkers      = 2
)

// DefaultPaths are the path prefixes forwarded when Options.Paths is
// empty: the OpenAI API under /v1/ and LiteLLM's unversioned aliases.
func DefaultPaths() []string {
	return []string{"/v1/", "/chat/completions", "/completions", "/embeddings", "/models"}
}

// Identity headers added to every forwarded request. Any header with this
// prefix that a client sends is dropped first, so the upstream can trust
// them. They match the headers /auth/verify returns.
const (
	HeaderPrefix   = "X-Keygate-"
	HeaderUserID   = "X-Keygate-User-Id"
	HeaderUserRole = "X-Keygate-User-Role"
	HeaderKeyID    = "X-Keygate-Key-Id"
	HeaderTeamID   = "X-Keygate-Team-Id"
	HeaderKeyAlias = "X-Keygate-Key-Alias"
)

// Price is what one million tokens of a model cost.
type Price struct {
	InputPerMillion  float64
	OutputPerMillion float64
}

// SpendRecorder stores metered requests with their running totals, in
// one transaction per call and idempotently by request id
// (store.Spend.RecordSpendBatch; the wiring passes the service layer's
// RecordUsage).
type SpendRecorder interface {
	RecordSpendBatch(ctx context.Context, es []store.SpendEntry) ([]store.SpendEntry, error)
}

// Options configures a Proxy. Target, Authenticator, Check and Spend are
// required.
type Options struct {
	// Target is the upstream's base URL; a request for /v1/x goes to
	// Target's path joined with /v1/x.
	Target *url.URL
	// UpstreamKey replaces the client's credential as
	// "Authorization: Bearer <UpstreamKey>"; empty sends none.
	UpstreamKey string
	// Timeout bounds the wait for the upstream's response headers (504
	// when exceeded). It does not cut a stream that has started.
	Timeout time.Duration
	// Paths are the path prefixes to forward. A prefix ending in "/"
	// matches everything below it; any other matches itself and its
	// sub-paths ("/models" matches "/models/x", not "/modelsx").
	Paths []string
	// Authenticator resolves the caller, as for /auth/verify.
	Authenticator auth.Authenticator
	// Decide is the access decision (the wiring passes service.Decide,
	// the function /auth/verify uses).
	Decide func(p auth.Principal, r access.Request) error
	// Spend receives one entry per metered request.
	Spend SpendRecorder
	// Prices maps model names to prices; unknown models cost 0 and are
	// logged once.
	Prices map[string]Price
	// EstimateMaxTokens is the output bound assumed for a call that sets
	// none (max_tokens, max_completion_tokens), when its cost is reserved
	// against its budgets (default DefaultEstimateMaxTokens).
	EstimateMaxTokens int64
	// OnSpend runs after an entry was recorded (the wiring invalidates
	// verification caches so budgets bite at once).
	OnSpend func(ctx context.Context, keyHash, userID string)
	Logger  *slog.Logger
	Now     func() time.Time
	// SessionCookie is the name of Keygate's session cookie: accepted as a
	// credential and never forwarded.
	SessionCookie string
	// MaxBodyBytes caps request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// SpendQueue and SpendWorkers size the recorder (defaults
	// DefaultSpendQueue, DefaultSpendWorkers).
	SpendQueue   int
	SpendWorkers int
	// SpoolDir is where spend waits, on disk, while the database cannot
	// take it (subdirectory spend-spool; refused entries go to
	// spend-rejected). Empty keeps it in memory, lost if the process stops
	// before the database is back.
	SpoolDir string
	// FailClosed refuses requests that name a model (503) while spend is
	// not being recorded, instead of serving them and spooling their spend;
	// and, with SharedHolds, a call whose reservation cannot be taken in
	// the database.
	FailClosed bool
	// SharedHolds, when set (replicas on one database), takes every
	// budget reservation in the database too, so that the replicas
	// together keep the bound one instance keeps (budget.Shared). Nil: the
	// reservations are this instance's alone.
	SharedHolds store.BudgetHolds
}

// Proxy is the forwarding handler. Create it with New; stop it with Close
// after the HTTP server has shut down.
type Proxy struct {
	opts      Options
	log       *slog.Logger
	rp        *httputil.ReverseProxy
	transport *http.Transport
	rec       *recorder
	limits    *limiter
	// ledger holds this instance's reservations against budgets; holds
	// those of calls whose spend waits in the recorder.
	ledger *budget.Ledger
	holds  holdTable
	// shared takes the reservations in the database (nil: Options.SharedHolds unset).
	shared *budget.Shared

	warnMu sync.Mutex
	warned map[string]struct{}
}

// maxWarnedModels bounds the set of models already warned about as
// unpriced.
const maxWarnedModels = 1024

// New validates o and returns a ready Proxy.
func New(o Options) (*Proxy, error) {
	var errs []error
	if o.Target == nil || (o.Target.Scheme != "http" && o.Target.Scheme != "https") || o.Target.Host == "" {
		errs = append(errs, errors.New("Target must be an absolute http(s) URL"))
	}
	if o.Authenticator == nil {
		errs = append(errs, errors.New("Authenticator is required"))
	}
	if o.Decide == nil {
		errs = append(errs, errors.New("Decide is required"))
	}
	if o.Spend == nil {
		errs = append(errs, errors.New("Spend is required"))
	}
	if o.Timeout < 0 || o.MaxBodyBytes < 0 || o.SpendQueue < 0 || o.SpendWorkers < 0 {
		errs = append(errs, errors.New("Timeout, MaxBodyBytes, SpendQueue and SpendWorkers must not be negative"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("upstream: invalid options: %w", errors.Join(errs...))
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if len(o.Paths) == 0 {
		o.Paths = DefaultPaths()
	}
	// Private copies: the caller's slices and maps may change later.
	o.Paths, o.Prices = slices.Clone(o.Paths), maps.Clone(o.Prices)
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.SpendQueue == 0 {
		o.SpendQueue = DefaultSpendQueue
	}
	if o.SpendWorkers == 0 {
		o.SpendWorkers = DefaultSpendWorkers
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.EstimateMaxTokens <= 0 {
		o.EstimateMaxTokens = DefaultEstimateMaxTokens
	}
	p := &Proxy{opts: o, log: o.Logger, limits: newLimiter(), ledger: budget.NewLedger(), warned: map[string]struct{}{}}
	p.transport = newTransport(o.Timeout)
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p.transport,
		FlushInterval:  -1, // flush every write: SSE chunks reach the client as they arrive
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		BufferPool:     newBufferPool(),
	}
	rec, err := newRecorder(o.Spend, o.OnSpend, p.holds.release, o.Logger, o.SpoolDir, o.SpendQueue, o.SpendWorkers)
	if err != nil {
		return nil, err
	}
	p.rec = rec
	if o.SharedHolds != nil {
		p.shared = budget.NewShared(o.SharedHolds, budget.SharedOptions{Logger: o.Logger})
	}
	return p, nil
}

// newTransport is http.DefaultTransport with room for many concurrent
// streams to one host and the header timeout.
func newTransport(timeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = timeout
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	// The proxy reads usage from the bodies, so it asks for them
	// uncompressed (see rewrite) and never lets the transport negotiate.
	t.DisableCompression = true
	return t
}

// Matches reports whether path is one the proxy forwards.
func (p *Proxy) Matches(path string) bool {
	for _, pre := range p.opts.Paths {
		if strings.HasSuffix(pre, "/") {
			if strings.HasPrefix(path, pre) {
				return true
			}
			continue
		}
		if path == pre || strings.HasPrefix(path, pre+"/") {
			return true
		}
	}
	return false
}

// Close drains the spend queue, waiting until every entry is written (or
// spooled, once ctx ends) and releases idle upstream connections. Call it
// after the HTTP server has stopped serving; entries metered later are
// written synchronously.
func (p *Proxy) Close(ctx context.Context) error {
	err := p.rec.close(ctx)
	if p.shared != nil {
		// After the recorder: spooled spend keeps its holds renewed
		// until now, then they expire (budget.HoldLifetime).
		p.shared.Close()
	}
	p.transport.CloseIdleConnections()
	return err
}

// bufferPool recycles ReverseProxy's copy buffers.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(s []byte) { b.p.Put(&s) }
