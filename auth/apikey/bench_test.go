package apikey_test

import (
	"testing"

	"github.com/keygate/keygate/auth/apikey"
)

// BenchmarkHash is the per-request cost of turning a presented key into
// its lookup value on the hot path.
func BenchmarkHash(b *testing.B) {
	k := generate(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		_ = apikey.Hash(k)
	}
}

// BenchmarkParse classifies a generated key (checksum path) and a
// LiteLLM-style key (foreign path).
func BenchmarkParse(b *testing.B) {
	for name, k := range map[string]string{
		"keygate": generate(b, nil),
		"foreign": "sk-Kq2_fX9-uBv7TzWcQ1aLrA",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := apikey.Parse(k); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGenerate uses crypto/rand, as production does.
func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := apikey.Generate(nil); err != nil {
			b.Fatal(err)
		}
	}
}
