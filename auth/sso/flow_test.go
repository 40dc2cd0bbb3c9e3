package sso_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/sso"
)

func codec(t *testing.T, key string) *sso.StateCodec {
	t.Helper()
	c, err := sso.NewStateCodec([]byte(key))
	require.NoError(t, err)
	return c
}

const testKey = "0123456789abcdef0123456789abcdef"

func TestNewFlow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a, err := sso.NewFlow(rand.Reader, "google", "/ui/keys", now)
	require.NoError(t, err)
	b, err := sso.NewFlow(rand.Reader, "google", "/ui/keys", now)
	require.NoError(t, err)
	require.Equal(t, "google", a.Provider)
	require.Equal(t, "/ui/keys", a.ReturnTo)
	require.Equal(t, now.Add(sso.FlowLifetime), a.Expires)
	require.GreaterOrEqual(t, len(a.State), 22, "≥ 128 bits")
	require.GreaterOrEqual(t, len(a.Nonce), 22, "≥ 128 bits")
	require.GreaterOrEqual(t, len(a.Verifier), 43)
	require.LessOrEqual(t, len(a.Verifier), 128)
	for _, r := range a.Verifier {
		require.True(t, strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", r))
	}
	require.NotEqual(t, a.State, b.State)
	require.NotEqual(t, a.Nonce, b.Nonce)
	require.NotEqual(t, a.Verifier, b.Verifier)
	require.NotEqual(t, a.State, a.Nonce)

	_, err = sso.NewFlow(bytes.NewReader(make([]byte, 10)), "google", "", now)
	require.Error(t, err)
}

func TestStateCodecRoundTrip(t *testing.T) {
	t.Parallel()
	c := codec(t, testKey)
	now := time.Now()
	fs, err := sso.NewFlow(rand.Reader, "okta", "/ui?x=1", now)
	require.NoError(t, err)
	sealed, err := c.Seal(fs)
	require.NoError(t, err)
	require.NotContains(t, sealed, fs.Verifier, "the verifier is encrypted")
	require.NotContains(t, sealed, "okta")

	got, err := c.Open(sealed, now.Add(sso.FlowLifetime-time.Second))
	require.NoError(t, err)
	require.Equal(t, fs.State, got.State)
	require.Equal(t, fs.Nonce, got.Nonce)
	require.Equal(t, fs.Verifier, got.Verifier)
	require.Equal(t, fs.ReturnTo, got.ReturnTo)
	require.True(t, fs.Expires.Equal(got.Expires))

	require.True(t, sso.StateMatches(got, fs.State))
	require.False(t, sso.StateMatches(got, fs.State+"x"))
	require.False(t, sso.StateMatches(got, ""))
	require.False(t, sso.StateMatches(sso.FlowState{}, ""))
}

func TestStateCodecRejects(t *testing.T) {
	t.Parallel()
	c := codec(t, testKey)
	now := time.Now()
	fs, err := sso.NewFlow(rand.Reader, "okta", "", now)
	require.NoError(t, err)
	sealed, err := c.Seal(fs)
	require.NoError(t, err)

	flip := []byte(sealed)
	i := len(flip) / 2
	flip[i] = map[bool]byte{true: 'A', false: 'B'}[flip[i] != 'A']

	cases := map[string]struct {
		value string
		codec *sso.StateCodec
		at    time.Time
	}{
		"tampered":   {string(flip), c, now},
		"expired":    {sealed, c, now.Add(sso.FlowLifetime)},
		"wrong key":  {sealed, codec(t, "another-key-another-key-another-k"), now},
		"truncated":  {sealed[:len(sealed)-4], c, now},
		"too short":  {"abc", c, now},
		"empty":      {"", c, now},
		"not base64": {"!!!" + sealed, c, now},
		"oversized":  {strings.Repeat("A", 5000), c, now},
		"appended":   {sealed + "AAAA", c, now},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := tc.codec.Open(tc.value, tc.at)
			require.ErrorIs(t, err, sso.ErrInvalidState)
		})
	}

	t.Run("sealed empty flow", func(t *testing.T) {
		s, err := c.Seal(sso.FlowState{Expires: now.Add(time.Minute)})
		require.NoError(t, err)
		_, err = c.Open(s, now)
		require.ErrorIs(t, err, sso.ErrInvalidState)
	})
	t.Run("short key", func(t *testing.T) {
		_, err := sso.NewStateCodec([]byte("short"))
		require.True(t, errors.Is(err, sso.ErrConfig))
	})
	t.Run("huge return_to", func(t *testing.T) {
		big := fs
		big.ReturnTo = strings.Repeat("x", 4000)
		_, err := c.Seal(big)
		require.Error(t, err)
	})
}
