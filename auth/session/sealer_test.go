package session_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/session"
)

func TestNewSealerRequiresSecret(t *testing.T) {
	_, err := session.NewSealer("")
	require.ErrorIs(t, err, session.ErrNoSecret)
	require.Contains(t, err.Error(), "KEYGATE_SECRET (or LITELLM_SALT_KEY) is required to encrypt signing keys")

	_, err = session.NewSealer("short-secret")
	require.ErrorIs(t, err, session.ErrNoSecret)
	require.Contains(t, err.Error(), "at least 16")
	require.NotContains(t, err.Error(), "short-secret")

	_, err = session.NewSealer("sixteen-chars-ok")
	require.NoError(t, err)
}

func TestSealerRoundTripAndFailures(t *testing.T) {
	s := newSealer(t, testSecret)
	msg := []byte("private key bytes")
	sealed, err := s.Seal(msg, []byte("kid-1"))
	require.NoError(t, err)
	require.Equal(t, byte(1), sealed[0], "version prefix")
	require.False(t, bytes.Contains(sealed, msg))

	again, err := s.Seal(msg, []byte("kid-1"))
	require.NoError(t, err)
	require.NotEqual(t, sealed, again, "random nonce")

	got, err := s.Open(sealed, []byte("kid-1"))
	require.NoError(t, err)
	require.Equal(t, msg, got)

	// Same secret in a fresh Sealer (another replica) opens it.
	got, err = newSealer(t, testSecret).Open(sealed, []byte("kid-1"))
	require.NoError(t, err)
	require.Equal(t, msg, got)

	_, err = newSealer(t, "another-secret-of-enough-length").Open(sealed, []byte("kid-1"))
	require.ErrorIs(t, err, session.ErrSealOpen)
	require.Contains(t, err.Error(), "KEYGATE_SECRET")

	_, err = s.Open(sealed, []byte("kid-2"))
	require.ErrorIs(t, err, session.ErrSealOpen, "bound to the kid")

	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	_, err = s.Open(flipped, []byte("kid-1"))
	require.ErrorIs(t, err, session.ErrSealOpen)

	future := bytes.Clone(sealed)
	future[0] = 9
	_, err = s.Open(future, []byte("kid-1"))
	require.ErrorIs(t, err, session.ErrSealOpen)
	require.Contains(t, err.Error(), "version")

	for _, b := range [][]byte{nil, {}, {1}, sealed[:20]} {
		_, err = s.Open(b, []byte("kid-1"))
		require.ErrorIs(t, err, session.ErrSealOpen)
	}
}
