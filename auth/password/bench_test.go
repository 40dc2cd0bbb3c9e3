package password_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/password"
)

// BenchmarkHash is one login-sized KDF run with DefaultParams: the price
// of a password login or change, and the figure to check the parameters
// against (OWASP aims well under a second).
func BenchmarkHash(b *testing.B) {
	h := newHasher(b, password.DefaultParams(), 1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, err := h.Hash(ctx, "correct horse battery")
		require.NoError(b, err)
	}
}

// BenchmarkVerify is Hash plus parsing and the comparison; BenchmarkVerifyDummy
// must match it, or unknown users are distinguishable by timing.
func BenchmarkVerify(b *testing.B) {
	h := newHasher(b, password.DefaultParams(), 1)
	ctx := context.Background()
	phc, err := h.Hash(ctx, "correct horse battery")
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		ok, _, err := h.Verify(ctx, phc, "correct horse battery")
		require.NoError(b, err)
		require.True(b, ok)
	}
}

func BenchmarkVerifyDummy(b *testing.B) {
	h := newHasher(b, password.DefaultParams(), 1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		require.NoError(b, h.VerifyDummy(ctx, "correct horse battery"))
	}
}

// BenchmarkVerifyMalformed shows a corrupt row is rejected before argon2.
func BenchmarkVerifyMalformed(b *testing.B) {
	h := newHasher(b, password.DefaultParams(), 1)
	ctx := context.Background()
	const bad = "$argon2id$v=19$m=1048577,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	b.ReportAllocs()
	for b.Loop() {
		_, _, err := h.Verify(ctx, bad, "correct horse battery")
		require.ErrorIs(b, err, password.ErrInvalidHash)
	}
}
