package gormstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNextReset(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	hourly := func(_ string, from time.Time) time.Time { return from.Add(time.Hour) }

	at, ok := nextReset("1h", now.Add(-90*time.Minute), now, hourly)
	require.True(t, ok)
	require.Equal(t, now.Add(30*time.Minute), at, "stepped from the old reset time, keeping its phase")

	at, ok = nextReset("1h", now, now, hourly)
	require.True(t, ok)
	require.Equal(t, now.Add(time.Hour), at, "due exactly now: the result is after now")

	// Far behind: re-anchored at now instead of stepping for ever.
	calls := 0
	counting := func(d string, from time.Time) time.Time { calls++; return hourly(d, from) }
	at, ok = nextReset("1h", now.AddDate(-5, 0, 0), now, counting)
	require.True(t, ok)
	require.Equal(t, now.Add(time.Hour), at)
	require.Equal(t, maxResetSteps+1, calls)

	_, ok = nextReset("bogus", now.Add(-time.Minute), now, func(string, time.Time) time.Time { return time.Time{} })
	require.False(t, ok, "zero time: stop resetting")
	_, ok = nextReset("back", now.Add(-time.Minute), now, func(_ string, f time.Time) time.Time { return f.Add(-time.Hour) })
	require.False(t, ok, "a next that goes backwards: stop resetting")
	_, ok = nextReset("sub-µs", now.Add(-time.Minute), now, func(_ string, f time.Time) time.Time { return f.Add(time.Nanosecond) })
	require.False(t, ok, "a step lost to microsecond storage precision does not advance")
}
