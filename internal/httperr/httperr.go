// Package httperr is the one place where errors become HTTP responses.
// Handlers return errors; Handle maps them to a status and LiteLLM's JSON
// error body {"error":{"message","type","param","code"}}. Only the public
// message of an *apperr.Error ever reaches a client; any other error is
// logged with the request id and answered with a generic 500.
package httperr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/password"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/store"
)

// HandlerFunc is a Gin handler that reports failure by returning an error.
type HandlerFunc func(c *gin.Context) error

// Body is LiteLLM's error envelope.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is the inside of Body. LiteLLM sends param as the string "None"
// when there is none and code as the status in a string; we keep both
// conventions so clients that parse them keep working.
type Detail struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   string `json:"param"`
	Code    string `json:"code"`
}

// Handle adapts h to gin.HandlerFunc.
func Handle(h HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			Write(c, err)
		}
	}
}

// NotByClient returns err as the database being unavailable when it says
// "canceled" but ctx, the request's, is not done: then the client did not
// leave — one of our own bounds cut a call short — and the answer is a
// 503 the client is still waiting for, not a 499. Other errors are
// returned as they are.
func NotByClient(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || !errors.Is(err, context.Canceled) {
		return err
	}
	// %v, not %w: the chain must no longer read as canceled.
	return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
}

// StatusClientClosed is nginx's 499: the client closed the request before
// the answer.
const StatusClientClosed = 499

// Resolve turns any error into its public form: status, type and message.
func Resolve(err error) (status int, typ, msg, param string, retryAfter int) {
	if errors.Is(err, context.Canceled) {
		// The client went away while the request waited (its turn to
		// hash a password, say): nobody reads this answer, and it is not
		// a server error to log.
		return StatusClientClosed, "client_closed_request", "The client closed the request.", "", 0
	}
	if e, ok := apperr.As(err); ok {
		status, typ = kindStatus(e.Kind)
		msg = e.Message
		if e.Kind == apperr.KindInternal {
			msg = "Internal server error."
		}
		return status, typ, msg, e.Param, e.RetryAfterSeconds
	}
	switch {
	case errors.Is(err, auth.ErrNoCredential):
		return http.StatusUnauthorized, "auth_error", "Authentication Error, no API key or session provided.", "", 0
	case errors.Is(err, auth.ErrExpired):
		return http.StatusUnauthorized, "expired_key", "Authentication Error, the key or session has expired.", "", 0
	case errors.Is(err, auth.ErrNotInTeam):
		return http.StatusUnauthorized, "auth_error", "Authentication Error, the key's owner is no longer a member of the key's team.", "", 0
	case errors.Is(err, auth.ErrBlocked):
		return http.StatusUnauthorized, "auth_error", "Authentication Error, the key or its owner is blocked.", "", 0
	case errors.Is(err, auth.ErrInvalid):
		return http.StatusUnauthorized, "auth_error", "Authentication Error, invalid API key or session.", "", 0
	case errors.Is(err, password.ErrBusy):
		return http.StatusTooManyRequests, "rate_limit_error",
			"Too many sign-ins are being checked right now; try again in a moment.", "", 1
	case errors.Is(err, store.ErrNotWritable):
		return http.StatusServiceUnavailable, "service_unavailable",
			"The database cannot be written (disk full or read-only); nothing was changed. Try again once it is fixed.", "", 5
	case errors.Is(err, auth.ErrUnavailable), errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable, "service_unavailable", "The database is unavailable; try again.", "", 1
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "not_found_error", "Not found.", "", 0
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, "conflict_error", "Conflict with an existing record.", "", 0
	}
	return http.StatusInternalServerError, "internal_server_error", "Internal server error.", "", 0
}

// ResolveLiteLLM is Resolve with the statuses LiteLLM's proxy answers an
// LLM request with, for forwarding mode, where clients (the OpenAI SDKs,
// LiteLLM's own tooling) were written against LiteLLM: a budget exceeded is
// 400 budget_exceeded (a 429 makes the SDKs retry), an expired key 400
// expired_key, a model a list refuses 401 with LiteLLM's
// *_model_access_denied type, a route outside allowed_routes 401
// auth_error. /auth/verify and the management API keep Resolve's
// forward-auth statuses. README "LiteLLM status mapping" lists them.
func ResolveLiteLLM(err error) (status int, typ, msg, param string, retryAfter int) {
	status, typ, msg, param, retryAfter = Resolve(err)
	if e, ok := apperr.As(err); ok {
		switch {
		case e.Kind == apperr.KindBudgetExceeded:
			return http.StatusBadRequest, "budget_exceeded", msg, param, 0
		case strings.HasSuffix(e.Reason, "_model_access_denied"):
			return http.StatusUnauthorized, e.Reason, msg, "model", 0
		case e.Reason == "route_not_allowed":
			return http.StatusUnauthorized, "auth_error", "Authentication Error, " + msg, param, 0
		}
		return status, typ, msg, param, retryAfter
	}
	if errors.Is(err, auth.ErrExpired) {
		return http.StatusBadRequest, "expired_key", "Authentication Error - Expired Key. " + msg, param, 0
	}
	return status, typ, msg, param, retryAfter
}

func kindStatus(k apperr.Kind) (int, string) {
	switch k {
	case apperr.KindInvalid:
		return http.StatusBadRequest, "bad_request_error"
	case apperr.KindUnauthenticated:
		return http.StatusUnauthorized, "auth_error"
	case apperr.KindExpired:
		return http.StatusUnauthorized, "expired_key"
	case apperr.KindForbidden:
		return http.StatusForbidden, "auth_error"
	case apperr.KindNotFound:
		return http.StatusNotFound, "not_found_error"
	case apperr.KindConflict:
		return http.StatusConflict, "conflict_error"
	case apperr.KindTooLarge:
		return http.StatusRequestEntityTooLarge, "bad_request_error"
	case apperr.KindUnsupported:
		return http.StatusUnsupportedMediaType, "bad_request_error"
	case apperr.KindRateLimited:
		return http.StatusTooManyRequests, "rate_limit_error"
	case apperr.KindBudgetExceeded:
		return http.StatusTooManyRequests, "budget_exceeded"
	case apperr.KindUnavailable, apperr.KindDisabled:
		return http.StatusServiceUnavailable, "service_unavailable"
	case apperr.KindBadGateway:
		return http.StatusBadGateway, "upstream_error"
	case apperr.KindGatewayTimeout:
		return http.StatusGatewayTimeout, "upstream_timeout"
	}
	return http.StatusInternalServerError, "internal_server_error"
}

// ServerFault reports whether an answer of status for err is a failure of
// this server, to log at error level: a 5xx, unless the feature asked for
// is off by configuration.
func ServerFault(status int, err error) bool { return status >= 500 && !disabled(err) }

func disabled(err error) bool {
	e, ok := apperr.As(err)
	return ok && e.Kind == apperr.KindDisabled
}

// Write sends err as a JSON error response and logs it: server-side
// failures at error level with the cause, client errors at debug.
func Write(c *gin.Context, err error) {
	err = NotByClient(c.Request.Context(), err)
	status, typ, msg, param, retry := Resolve(err)
	if ServerFault(status, err) {
		Logger(c).Error("request failed", "status", status, "err", err)
	} else if disabled(err) {
		c.Set(disabledKey, true)
		Logger(c).Info("request refused: the feature is off", "status", status, "err", err)
	} else if debugEnabled(c) {
		Logger(c).Debug("request rejected", "status", status, "err", err)
	}
	if retry > 0 {
		c.Header("Retry-After", strconv.Itoa(retry))
	}
	c.Set(errorTypeKey, typ) // for Observe (metrics)
	if sh, ok := shapeOf(c); ok {
		sh(c, status, msg, err)
		c.Abort()
		return
	}
	if param == "" {
		param = "None"
	}
	c.AbortWithStatusJSON(status, Body{Error: Detail{Message: msg, Type: typ, Param: param, Code: strconv.Itoa(status)}})
}

func debugEnabled(c *gin.Context) bool {
	if v, ok := c.Get(loggerKey); ok {
		if l, ok := v.(*requestLog); ok {
			return l.base.Enabled(c.Request.Context(), slog.LevelDebug)
		}
	}
	return false
}

// Logger returns the request-scoped logger set by RequestContext, or the
// default logger.
func Logger(c *gin.Context) *slog.Logger {
	if v, ok := c.Get(loggerKey); ok {
		if l, ok := v.(*requestLog); ok {
			return l.get()
		}
	}
	return slog.Default()
}

// WriteHTTP is Write for handlers outside Gin (the forwarding path): the
// same status, body and Retry-After.
func WriteHTTP(w http.ResponseWriter, err error) {
	status, typ, msg, param, retry := Resolve(err)
	if param == "" {
		param = "None"
	}
	body, _ := json.Marshal(Body{Error: Detail{Message: msg, Type: typ, Param: param, Code: strconv.Itoa(status)}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if retry > 0 {
		h.Set("Retry-After", strconv.Itoa(retry))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
