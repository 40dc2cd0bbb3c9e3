// Package ratelog keeps repeated warnings and errors from flooding the
// log. During an outage every request fails the same way, and a line per
// request (two, with the access log) is megabytes a minute that say one
// thing. A Handler lets the first Burst records of each kind (level and
// message) through per Window, drops the rest, and when the window ends
// writes one line saying how many were dropped. Records below Warn pass
// untouched.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults for Options.
const (
	DefaultBurst  = 20
	DefaultWindow = 10 * time.Second
	// maxKinds bounds the kinds tracked per window; past it, new kinds
	// share one budget.
	maxKinds = 1000
)

// Options configures New.
type Options struct {
	Burst  int           // records of one kind let through per window (default DefaultBurst)
	Window time.Duration // default DefaultWindow
	Now    func() time.Time
}

// New wraps h.
func New(h slog.Handler, o Options) slog.Handler {
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &handler{next: h, st: &state{o: o, counts: map[kind]*count{}, base: h}}
}

type kind struct {
	level slog.Level
	msg   string
}

type count struct {
	passed, dropped int
}

// state is shared by a Handler and every handler derived from it with
// WithAttrs or WithGroup (request-scoped loggers), so the limit holds
// across requests.
type state struct {
	o      Options
	mu     sync.Mutex
	start  time.Time
	counts map[kind]*count
	// base receives the "dropped" summaries: the handler New wrapped,
	// without any request's attributes.
	base slog.Handler
}

type handler struct {
	next slog.Handler
	st   *state
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	pass, summary := h.st.admit(kind{r.Level, r.Message})
	for _, s := range summary {
		_ = h.st.base.Handle(ctx, s)
	}
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(as), st: h.st}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), st: h.st}
}

// admit counts one record of k and says whether to write it, plus the
// summaries of the window that just ended, if one did.
func (s *state) admit(k kind) (bool, []slog.Record) {
	at := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var summary []slog.Record
	if s.start.IsZero() || at.Sub(s.start) >= s.o.Window || at.Before(s.start) {
		summary = s.summariesLocked(at)
		s.start = at
		clear(s.counts)
	}
	c := s.counts[k]
	if c == nil {
		if len(s.counts) >= maxKinds {
			k = kind{level: k.level, msg: "(other repeated lines)"}
			c = s.counts[k]
		}
		if c == nil {
			c = &count{}
			s.counts[k] = c
		}
	}
	if c.passed < s.o.Burst {
		c.passed++
		return true, summary
	}
	c.dropped++
	return false, summary
}

func (s *state) summariesLocked(at time.Time) []slog.Record {
	var out []slog.Record
	for k, c := range s.counts {
		if c.dropped == 0 {
			continue
		}
		r := slog.NewRecord(at, k.level, "repeated log lines dropped", 0)
		r.AddAttrs(slog.String("message", k.msg), slog.Int("dropped", c.dropped), slog.Int("written", c.passed),
			slog.Duration("window", s.o.Window))
		out = append(out, r)
	}
	return out
}

// Flush writes the summary of the current window (at shutdown).
func Flush(ctx context.Context, h slog.Handler) {
	rh, ok := h.(*handler)
	if !ok {
		return
	}
	rh.st.mu.Lock()
	summary := rh.st.summariesLocked(rh.st.o.Now())
	clear(rh.st.counts)
	rh.st.start = time.Time{}
	rh.st.mu.Unlock()
	for _, r := range summary {
		_ = rh.st.base.Handle(ctx, r)
	}
}
