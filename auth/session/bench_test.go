package session_test

import (
	"context"
	"testing"

	"github.com/keygate/keygate/auth/session"
)

var benchAlgs = []string{session.AlgES256, session.AlgRS256}

func benchIssuer(b *testing.B, alg string, opts session.IssuerOptions) *session.Issuer {
	b.Helper()
	return newIssuer(b, newRing(b, newMemKeyStore(), alg, nil), opts)
}

func BenchmarkMint(b *testing.B) {
	ctx := context.Background()
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			iss := benchIssuer(b, alg, session.IssuerOptions{})
			in := userInput()
			for b.Loop() {
				if _, _, err := iss.Mint(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyCached: the same token again (the common request path).
func BenchmarkVerifyCached(b *testing.B) {
	ctx := context.Background()
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			iss := benchIssuer(b, alg, session.IssuerOptions{})
			tok, _, err := iss.Mint(ctx, userInput())
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := iss.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyCold: cache disabled, so every call parses and checks the
// signature.
func BenchmarkVerifyCold(b *testing.B) {
	ctx := context.Background()
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			iss := benchIssuer(b, alg, session.IssuerOptions{CacheSize: -1})
			tok, _, err := iss.Mint(ctx, userInput())
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := iss.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyCachedParallel(b *testing.B) {
	ctx := context.Background()
	iss := benchIssuer(b, session.AlgES256, session.IssuerOptions{})
	tok, _, err := iss.Mint(ctx, userInput())
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := iss.Verify(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
