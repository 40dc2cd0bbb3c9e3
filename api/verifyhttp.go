package api

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/httperr"
)

// VerifyHandler serves /auth/verify and the paths below it straight from
// net/http, in front of Gin: it runs on every LLM request, and Gin's
// context, middleware chain and per-request maps cost more than the answer
// itself (bench/README.md, "The verification path"). It keeps every
// behaviour of the Gin route: the same decision (serveVerify), the
// X-Request-Id header, panic recovery, the JSON error body, failures
// logged (5xx at error, others at debug) and every answer observed for
// metrics under the Gin route's name.
//
// Route only paths for which IsVerifyPath is true to it.
func (s *Server) VerifyHandler(observe httperr.Observer) http.Handler {
	return &verifyEndpoint{s: s, ids: httperr.NewRequestIDs(), observe: observe, log: s.log}
}

type verifyEndpoint struct {
	s       *Server
	ids     *httperr.RequestIDs
	observe httperr.Observer
	log     *slog.Logger
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// WriteString lets io.WriteString reach the server's own string writer
// without converting to a byte slice.
func (w *statusRecorder) WriteString(s string) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return io.WriteString(w.ResponseWriter, s)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (v *verifyEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := v.ids.For(r)
	w.Header()[httperr.RequestIDHeader] = []string{id}
	route := "/auth/verify"
	if len(r.URL.Path) > len(route) {
		route = "/auth/verify/*path"
	}
	rec := statusRecorder{ResponseWriter: w}
	errType := ""
	defer func() {
		if p := recover(); p != nil {
			v.log.Error("panic serving request", "panic", fmt.Sprint(p), "path", route, "request_id", id)
			if rec.status == 0 {
				httperr.WriteHTTP(&rec, fmt.Errorf("panic: %v", p))
			}
		}
		if v.observe != nil {
			v.observe(r.Method, route, rec.status, errType, time.Since(start))
		}
	}()
	err := URLText(r)
	if err == nil {
		err = askedText(r)
	}
	if err == nil {
		err = v.s.serveVerify(&rec, r)
	}
	if err == nil {
		return
	}
	status, typ, _, _, _ := httperr.Resolve(err)
	errType = typ
	switch {
	case status >= http.StatusInternalServerError:
		v.log.Error("request failed", "status", status, "err", err, "request_id", id, "route", route)
	case v.log.Enabled(r.Context(), slog.LevelDebug):
		v.log.Debug("request rejected", "status", status, "err", err, "request_id", id, "route", route)
	}
	httperr.WriteHTTP(&rec, err)
}

// askedText holds what a proxy says about the request it asks for — the
// route headers (decoded path and query too), the method headers and
// X-Keygate-Model — to URLText's rule: NUL, invalid UTF-8 or a malformed
// escape is a 400, as it is in the path of the request itself (an outside
// test sent X-Original-URI: /v1/chat/completions%00 and got an answer).
// Most requests carry none of them, and the loop costs nothing then.
func askedText(r *http.Request) error {
	for _, h := range routeHeaders {
		for _, v := range r.Header[h] {
			if !validText(v, 8192) {
				return textError("The header", h)
			}
			u, err := url.ParseRequestURI(v)
			if err != nil {
				return apperr.InvalidParam(h, "%s must be a request URI (a path and an optional query).", h)
			}
			if !validText(u.Path, 8192) {
				return textError("The path in", h)
			}
			q, err := url.ParseQuery(u.RawQuery)
			if err != nil {
				return apperr.InvalidParam(h, "The query in %s is malformed.", h)
			}
			for k, vs := range q {
				if !validText(k, 256) {
					return textError("A query parameter name in", h)
				}
				for _, x := range vs {
					if !validText(x, maxQueryValue) {
						return textError("A query parameter in", h)
					}
				}
			}
		}
	}
	for _, h := range namedHeaders {
		for _, v := range r.Header[h] {
			if !validText(v, maxQueryValue) {
				return textError("The header", h)
			}
		}
	}
	return nil
}

// namedHeaders are the other headers askedText checks, in canonical form.
var namedHeaders = append([]string{http.CanonicalHeaderKey(HeaderModel)}, methodHeaders...)

// IsVerifyPath reports whether path is /auth/verify or below it.
func IsVerifyPath(path string) bool {
	rest, ok := strings.CutPrefix(path, "/auth/verify")
	return ok && (rest == "" || rest[0] == '/')
}
