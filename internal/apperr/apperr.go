// Package apperr carries an error's public face: the HTTP-independent kind
// of failure and a message that is safe to show a client. Everything else
// about an error (wrapped causes, SQL, stack) stays in logs; the adapter in
// internal/httperr turns a Kind into a status and LiteLLM's JSON error body.
package apperr

import (
	"errors"
	"fmt"
)

// Kind classifies a failure the client can act on.
type Kind int

// Kinds, each mapped to one HTTP status by internal/httperr.
const (
	KindInternal        Kind = iota // 500, message never shown
	KindInvalid                     // 400 bad_request_error
	KindUnauthenticated             // 401 auth_error
	KindExpired                     // 401 expired_key
	KindForbidden                   // 403 auth_error / permission
	KindNotFound                    // 404 not_found_error
	KindConflict                    // 409 conflict_error
	KindTooLarge                    // 413 bad_request_error
	KindRateLimited                 // 429 rate_limit_error
	KindBudgetExceeded              // 429 budget_exceeded
	KindUnavailable                 // 503 service_unavailable
	KindBadGateway                  // 502 upstream error
	KindGatewayTimeout              // 504 upstream timeout
	KindUnsupported                 // 415 bad_request_error (media type)
	// KindDisabled: 503 service_unavailable too, but the feature is off
	// by this server's configuration — an answer, not a failure (not
	// logged as one).
	KindDisabled
)

// Error is an error with a public message.
type Error struct {
	Kind    Kind
	Message string // safe for clients
	Param   string // the request field at fault, if any
	// RetryAfterSeconds, when > 0, is sent as Retry-After.
	RetryAfterSeconds int
	// Reason names the rule that refused, where a client of LiteLLM's
	// proxy expects one as the error type (e.g. "key_model_access_denied");
	// forwarding mode answers with it (httperr.ResolveLiteLLM).
	Reason string
	Err    error // internal cause, never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// As returns the first *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// KindOf returns the Kind of the first *Error in err's chain, or
// KindInternal.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return KindInternal
}

func newf(k Kind, format string, a ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, a...)}
}

// Invalid is a 400 for bad input.
func Invalid(format string, a ...any) *Error { return newf(KindInvalid, format, a...) }

// InvalidParam is a 400 naming the offending field.
func InvalidParam(param, format string, a ...any) *Error {
	e := newf(KindInvalid, format, a...)
	e.Param = param
	return e
}

// Unauthenticated is a 401.
func Unauthenticated(format string, a ...any) *Error {
	return newf(KindUnauthenticated, format, a...)
}

// Forbidden is a 403.
func Forbidden(format string, a ...any) *Error { return newf(KindForbidden, format, a...) }

// NotFound is a 404.
func NotFound(format string, a ...any) *Error { return newf(KindNotFound, format, a...) }

// Conflict is a 409.
func Conflict(format string, a ...any) *Error { return newf(KindConflict, format, a...) }

// Unavailable is a 503.
func Unavailable(format string, a ...any) *Error { return newf(KindUnavailable, format, a...) }

// Disabled is a 503 for a feature this server's configuration turns off.
func Disabled(format string, a ...any) *Error { return newf(KindDisabled, format, a...) }

// Wrap attaches an internal cause to a public error.
func (e *Error) Wrap(err error) *Error {
	e.Err = err
	return e
}
