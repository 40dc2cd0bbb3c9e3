package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/internal/httperr"
)

// EngineOptions configures the HTTP router shared by the API and the UI.
type EngineOptions struct {
	Logger *slog.Logger
	// TrustedProxies lists IPs/CIDRs whose X-Forwarded-For is believed;
	// empty trusts none, so c.ClientIP() is the TCP peer.
	TrustedProxies []string
	// MaxBodyBytes caps every request body (413 beyond it).
	MaxBodyBytes int64
	// LogAll decides whether a successful request gets an access-log line;
	// nil logs every request.
	LogAll httperr.AccessLog
	// Shape, when set, runs before the edge checks (body cap, text
	// validation), so that their refusals already use the error shape a
	// route family answers in (SCIM's under /scim/v2: scim.Shape).
	Shape gin.HandlerFunc
	// Observe, when set, sees every answer, the edge checks' refusals
	// included (it runs before them).
	Observe httperr.Observer
}

// NewEngine returns a Gin engine with Keygate's middleware: request id,
// panic recovery, access log, body cap, and JSON answers for unknown routes.
// Gin's release mode is selected here so cmd need not import Gin.
func NewEngine(o EngineOptions) (*gin.Engine, error) {
	gin.SetMode(gin.ReleaseMode)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	e := gin.New()
	e.ContextWithFallback = true
	if err := e.SetTrustedProxies(o.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	e.HandleMethodNotAllowed = true
	e.NoRoute(httperr.NotFound)
	e.NoMethod(httperr.MethodNotAllowed)
	e.Use(httperr.RequestContext(o.Logger, o.LogAll))
	if o.Observe != nil {
		e.Use(httperr.Observe(o.Observe))
	}
	if o.Shape != nil {
		e.Use(o.Shape)
	}
	e.Use(limitBody(o.MaxBodyBytes), checkText)
	if len(o.TrustedProxies) == 0 {
		e.Use(warnForwardedFor(o.Logger))
	}
	return e, nil
}

// warnForwardedFor says once that requests arrive through a proxy Keygate
// was not told to trust: every client then has the proxy's address, so
// per-address login slow-down and the audit log's client IPs lump
// everyone together. The header itself stays ignored (trusting it
// unconditionally would let any client pick its address).
func warnForwardedFor(log *slog.Logger) gin.HandlerFunc {
	var once sync.Once
	return func(c *gin.Context) {
		if c.Request.Header.Get("X-Forwarded-For") != "" {
			once.Do(func() {
				log.Warn("requests carry X-Forwarded-For but KEYGATE_TRUSTED_PROXIES is empty: client IPs are the proxy's address, "+
					"so per-address login limits apply to everyone behind it; list the proxy in KEYGATE_TRUSTED_PROXIES",
					"peer", c.RemoteIP())
			})
		}
		c.Next()
	}
}

// limitBody caps every request body; handlers that read past the cap get
// an *http.MaxBytesError and answer 413. /auth/verify sets its own, larger
// cap: proxies forward whole LLM requests there to have the model read.
func limitBody(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Body != nil && limit > 0 && !strings.HasPrefix(c.Request.URL.Path, "/auth/verify") {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		}
		c.Next()
	}
}
