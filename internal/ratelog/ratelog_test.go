package ratelog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestRepeatedErrorsAreBounded(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	h := New(slog.NewTextHandler(&buf, nil), Options{Burst: 3, Window: 10 * time.Second, Now: c.now})
	log := slog.New(h)
	for i := range 1000 {
		// Request-scoped loggers share the limit.
		log.With("request_id", i).Error("request failed", "status", 503)
		log.Info("http request", "status", 200) // info passes untouched
	}
	log.Warn("something else")
	out := buf.String()
	require.Equal(t, 3, strings.Count(out, "request failed"))
	require.Equal(t, 1000, strings.Count(out, "http request"))
	require.Equal(t, 1, strings.Count(out, "something else"))

	c.t = c.t.Add(11 * time.Second)
	log.Error("request failed", "status", 503)
	out = buf.String()
	require.True(t, strings.Contains(out, `msg="repeated log lines dropped" message="request failed" dropped=997 written=3`), "summary written")
	require.Equal(t, 4, strings.Count(out, "msg=\"request failed\""), "a new window lets lines through again")

	log.Error("request failed")
	log.Error("request failed")
	log.Error("request failed")
	Flush(context.Background(), h)
	require.True(t, strings.Contains(buf.String(), "dropped=1 written=3"), "Flush writes the summary")
}
