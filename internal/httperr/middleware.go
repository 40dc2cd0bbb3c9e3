package httperr

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

const (
	loggerKey    = "keygate.logger"
	requestIDKey = "keygate.request_id"
	// RequestIDHeader carries the request id in and out.
	RequestIDHeader = "X-Request-Id"
)

// RequestID returns the id RequestContext assigned to this request.
func RequestID(c *gin.Context) string { return c.GetString(requestIDKey) }

// AccessLog decides which requests get an access-log line at info level.
// Requests it declines are logged only when they fail with a 5xx (and at
// debug level otherwise), so the verification hot path — where a flood of
// bad keys is normal — is never dominated by logging; metrics count it.
type AccessLog func(r *http.Request) bool

// requestLog is what the middleware stores per request; the logger that
// carries the request id is built only when something is logged.
type requestLog struct {
	base *slog.Logger
	id   string
	log  *slog.Logger
}

func (l *requestLog) get() *slog.Logger {
	if l.log == nil {
		l.log = l.base.With("request_id", l.id)
	}
	return l.log
}

// RequestContext assigns a request id (kept from the client when it is a
// sane token, else a process-unique one), makes a logger carrying it
// available, recovers panics into a generic 500 without leaking the stack
// to the client, and writes one access-log line per request as AccessLog
// decides.
func RequestContext(base *slog.Logger, logAll AccessLog) gin.HandlerFunc {
	ids := newIDSource()
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !saneID(id) {
			id = ids.next()
		}
		rl := &requestLog{base: base, id: id}
		c.Set(requestIDKey, id)
		c.Set(loggerKey, rl)
		c.Writer.Header()[RequestIDHeader] = []string{id}
		start := time.Now()
		defer func() {
			if rec := recover(); rec != nil {
				rl.get().Error("panic serving request", "panic", fmt.Sprint(rec), "path", c.FullPath())
				if !c.Writer.Written() {
					Write(c, fmt.Errorf("panic: %v", rec))
				}
				c.Abort()
			}
			status := c.Writer.Status()
			level := slog.LevelInfo
			switch {
			case status >= http.StatusInternalServerError && !c.GetBool(disabledKey):
				level = slog.LevelError
			case logAll != nil && !logAll(c.Request):
				if !base.Enabled(c.Request.Context(), slog.LevelDebug) {
					return
				}
				level = slog.LevelDebug
			}
			rl.get().Log(c.Request.Context(), level, "http request",
				"method", c.Request.Method, "route", c.FullPath(), "status", status,
				"duration_ms", float64(time.Since(start).Microseconds())/1000, "client_ip", c.ClientIP())
		}()
		c.Next()
	}
}

// idSource makes request ids that are unique per process and cheap: a
// random prefix chosen at start and a counter.
type idSource struct {
	prefix string
	n      atomic.Uint64
}

func newIDSource() *idSource { return &idSource{prefix: newID()[:8]} }

func (s *idSource) next() string {
	return s.prefix + "-" + strconv.FormatUint(s.n.Add(1), 36)
}

// RequestIDs hands out request ids for handlers outside Gin, the same way
// RequestContext does: the client's X-Request-Id when it is a sane token,
// else a process-unique one.
type RequestIDs struct{ src *idSource }

// NewRequestIDs returns a request-id source.
func NewRequestIDs() *RequestIDs { return &RequestIDs{src: newIDSource()} }

// For returns the id of request r.
func (ids *RequestIDs) For(r *http.Request) string {
	if vs := r.Header[RequestIDHeader]; len(vs) > 0 && saneID(vs[0]) { // canonical: no Get
		return vs[0]
	}
	return ids.src.next()
}

func saneID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
			return false
		}
	}
	return true
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NotFound answers unknown routes in the JSON error shape.
func NotFound(c *gin.Context) {
	if sh, ok := shapeOf(c); ok {
		sh(c, http.StatusNotFound, "Route not found: "+c.Request.Method+" "+c.Request.URL.Path, nil)
		c.Abort()
		return
	}
	c.AbortWithStatusJSON(http.StatusNotFound, Body{Error: Detail{Message: "Route not found: " + c.Request.Method + " " + c.Request.URL.Path,
		Type: "not_found_error", Param: "None", Code: "404"}})
}

// MethodNotAllowed answers a known path with the wrong method.
func MethodNotAllowed(c *gin.Context) {
	if sh, ok := shapeOf(c); ok {
		sh(c, http.StatusMethodNotAllowed, "Method not allowed.", nil)
		c.Abort()
		return
	}
	c.AbortWithStatusJSON(http.StatusMethodNotAllowed, Body{Error: Detail{Message: "Method not allowed.",
		Type: "bad_request_error", Param: "None", Code: "405"}})
}

// errorTypeKey holds the "type" of the error body Write sent.
const errorTypeKey = "keygate.error_type"

// disabledKey marks an answer about a feature turned off by configuration
// (Write), which the request log does not count as a server failure.
const disabledKey = "keygate.disabled"

// Observer receives every finished request: the matched route template
// ("" when none matched), the status, the error body's type when Write
// answered (e.g. "expired_key"), and the time the handlers took.
type Observer func(method, route string, status int, errType string, elapsed time.Duration)

// Observe returns middleware that reports each request to o (metrics). A
// request whose handler panicked is not reported; RequestContext logs it.
func Observe(o Observer) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		o(c.Request.Method, c.FullPath(), c.Writer.Status(), c.GetString(errorTypeKey), time.Since(start))
	}
}
