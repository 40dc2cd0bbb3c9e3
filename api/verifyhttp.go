package api

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

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

// IsVerifyPath reports whether path is /auth/verify or below it.
func IsVerifyPath(path string) bool {
	rest, ok := strings.CutPrefix(path, "/auth/verify")
	return ok && (rest == "" || rest[0] == '/')
}
