package apikey

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// The checksum of every issued key must not change: crcIEEE is
// crc32.ChecksumIEEE, for strings and byte slices alike.
func TestCRCIsCRC32IEEE(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 100 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		want := crc32.ChecksumIEEE(b)
		if got := crcIEEE(b); got != want {
			t.Fatalf("len %d: crcIEEE(bytes) = %08x, want %08x", n, got, want)
		}
		if got := crcIEEE(string(b)); got != want {
			t.Fatalf("len %d: crcIEEE(string) = %08x, want %08x", n, got, want)
		}
	}
}

func TestParseAllocatesNothing(t *testing.T) {
	key, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := Parse(key); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Parse allocates %v times per call", n)
	}
}
