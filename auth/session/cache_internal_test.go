package session

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestVerifyCacheIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newVerifyCache(10)
	key := func(i int) [32]byte { return sha256.Sum256([]byte(fmt.Sprint(i))) }
	for i := range 100 {
		c.put(key(i), Claims{Subject: fmt.Sprint(i)}, now.Add(time.Minute), now)
		require.LessOrEqual(t, c.len(), 10)
	}
	got, ok := c.get(key(99), now)
	require.True(t, ok, "the newest entry survives")
	require.Equal(t, "99", got.Subject)

	_, ok = c.get(key(99), now.Add(time.Minute))
	require.False(t, ok, "entries end at their deadline")

	// When full of expired entries, eviction clears them rather than one.
	later := now.Add(2 * time.Minute)
	c.put(key(1000), Claims{}, later.Add(time.Minute), later)
	require.Equal(t, 1, c.len())
}
