package mfa_test

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/mfa"
)

// rfcSecret is RFC 6238 appendix B's SHA-1 seed, "12345678901234567890".
var rfcSecret = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))

// TestTOTPRFC6238Vectors: the six-digit tails of the RFC's SHA-1 test
// vectors.
func TestTOTPRFC6238Vectors(t *testing.T) {
	for unix, want := range map[int64]string{59: "287082", 1111111109: "081804", 1111111111: "050471", 1234567890: "005924",
		2000000000: "279037", 20000000000: "353130"} {
		got, err := mfa.TOTPCode(rfcSecret, mfa.TOTPStep(time.Unix(unix, 0)))
		require.NoError(t, err)
		require.Equal(t, want, got, "T=%d", unix)
	}
}

func TestCheckTOTPWindow(t *testing.T) {
	now := time.Unix(1234567890, 0)
	step := mfa.TOTPStep(now)
	for d := int64(-1); d <= 1; d++ {
		code, err := mfa.TOTPCode(rfcSecret, step+d)
		require.NoError(t, err)
		got, ok := mfa.CheckTOTP(rfcSecret, code, now)
		require.True(t, ok, "drift %d", d)
		require.Equal(t, step+d, got, "the matched step is reported, for the replay guard")
		got, ok = mfa.CheckTOTP(rfcSecret, code[:3]+" "+code[3:], now)
		require.True(t, ok, "a space in the middle is ignored")
		require.Equal(t, step+d, got)
	}
	for _, d := range []int64{-2, 2} {
		code, err := mfa.TOTPCode(rfcSecret, step+d)
		require.NoError(t, err)
		_, ok := mfa.CheckTOTP(rfcSecret, code, now)
		require.False(t, ok, "drift %d is outside ±1 step", d)
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef", "００５９２４", strings.Repeat("0", 1000)} {
		_, ok := mfa.CheckTOTP(rfcSecret, bad, now)
		require.False(t, ok, "%q", bad)
	}
}

func TestNewTOTP(t *testing.T) {
	s, err := mfa.NewTOTP("Keygate", "ada@example.com", rand.Reader)
	require.NoError(t, err)
	require.Len(t, s.Secret, 32, "160 bits of base32")
	require.True(t, strings.HasPrefix(s.URI, "otpauth://totp/Keygate:ada@example.com?"), s.URI)
	for _, p := range []string{"secret=" + s.Secret, "issuer=Keygate", "algorithm=SHA1", "digits=6", "period=30"} {
		require.Contains(t, s.URI, p)
	}
	require.Equal(t, "\x89PNG", string(s.QRPNG[:4]))
	other, err := mfa.NewTOTP("Keygate", "ada@example.com", rand.Reader)
	require.NoError(t, err)
	require.NotEqual(t, s.Secret, other.Secret)
}

func TestRecoveryCodes(t *testing.T) {
	codes, err := mfa.NewRecoveryCodes(rand.Reader)
	require.NoError(t, err)
	require.Len(t, codes, mfa.RecoveryCodeCount)
	seen := map[string]bool{}
	for _, c := range codes {
		require.Regexp(t, `^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$`, c)
		require.True(t, mfa.LooksLikeRecoveryCode(mfa.NormalizeCode(c)))
		require.False(t, mfa.LooksLikeTOTP(mfa.NormalizeCode(c)))
		require.False(t, seen[c])
		seen[c] = true
	}
	c := codes[0]
	h := mfa.HashRecoveryCode("u1", c)
	require.Equal(t, h, mfa.HashRecoveryCode("u1", strings.ToUpper(strings.ReplaceAll(c, "-", " "))), "typed in any case, with spaces")
	require.NotEqual(t, h, mfa.HashRecoveryCode("u2", c), "bound to the user")
	require.NotContains(t, h, mfa.NormalizeCode(c))
}

func TestRelyingPartyFromBaseURL(t *testing.T) {
	rp, err := mfa.NewRP("https://Keygate.Example.com:8443/base", "Keygate")
	require.NoError(t, err)
	require.Equal(t, "keygate.example.com", rp.ID())
	for _, bad := range []string{"", "keygate.example.com", "ftp://keygate.example.com", "http://127.0.0.1:4100", "http://[::1]:4100"} {
		_, err := mfa.NewRP(bad, "Keygate")
		require.Error(t, err, bad)
	}
	_, err = mfa.NewRP("http://localhost:4100", "Keygate")
	require.NoError(t, err, "localhost is a host name browsers accept")
}
