package httperr

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
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

// AccessLog decides which requests get an access-log line. The verification
// hot path logs only failures so that logging never dominates it.
type AccessLog func(r *http.Request) bool

// RequestContext assigns a request id (kept from the client when it is a
// sane token, else random), puts a logger carrying it in the context,
// recovers panics into a generic 500 without leaking the stack to the
// client, and writes one access-log line per request when logAll(c) or the
// status is ≥ 400.
func RequestContext(base *slog.Logger, logAll AccessLog) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !saneID(id) {
			id = newID()
		}
		c.Set(requestIDKey, id)
		log := base.With("request_id", id)
		c.Set(loggerKey, log)
		c.Header(RequestIDHeader, id)
		start := time.Now()
		defer func() {
			if rec := recover(); rec != nil {
				log.Error("panic serving request", "panic", fmt.Sprint(rec), "path", c.FullPath())
				if !c.Writer.Written() {
					Write(c, fmt.Errorf("panic: %v", rec))
				}
				c.Abort()
			}
			status := c.Writer.Status()
			if status >= http.StatusBadRequest || logAll == nil || logAll(c.Request) {
				level := slog.LevelInfo
				if status >= http.StatusInternalServerError {
					level = slog.LevelError
				}
				log.Log(c.Request.Context(), level, "http request",
					"method", c.Request.Method, "route", c.FullPath(), "status", status,
					"duration_ms", float64(time.Since(start).Microseconds())/1000, "client_ip", c.ClientIP())
			}
		}()
		c.Next()
	}
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
	c.AbortWithStatusJSON(http.StatusNotFound, Body{Error: Detail{Message: "Route not found: " + c.Request.Method + " " + c.Request.URL.Path,
		Type: "not_found_error", Param: "None", Code: "404"}})
}

// MethodNotAllowed answers a known path with the wrong method.
func MethodNotAllowed(c *gin.Context) {
	c.AbortWithStatusJSON(http.StatusMethodNotAllowed, Body{Error: Detail{Message: "Method not allowed.",
		Type: "bad_request_error", Param: "None", Code: "405"}})
}

// errorTypeKey holds the "type" of the error body Write sent.
const errorTypeKey = "keygate.error_type"

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
