package apikey_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/apikey"
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// seeded returns a deterministic random source, so statistical tests
// give the same answer on every run.
func seeded(seed string) io.Reader {
	return rand.NewChaCha8(sha256.Sum256([]byte(seed)))
}

func generate(t testing.TB, r io.Reader) string {
	t.Helper()
	k, err := apikey.Generate(r)
	require.NoError(t, err)
	return k
}

// The vector was computed independently (Python zlib.crc32) from the
// format in the package doc, including two bytes ≥ 248 that must be
// skipped by the rejection sampling.
func TestGenerateKnownVector(t *testing.T) {
	src := make([]byte, 64)
	for i := range src {
		src[i] = byte((i*37 + 240) % 256)
	}
	require.Equal(t, "sk-kg-sLwX8jKvOzaBmNyR2dEpQU1S6orh", generate(t, bytes.NewReader(src)))
}

func TestGenerateMatchesRegexAndParses(t *testing.T) {
	re := regexp.MustCompile(apikey.Regex)
	for range 1000 {
		k := generate(t, nil)
		require.Regexp(t, re, k)
		require.Len(t, k, apikey.Length)
		kind, err := apikey.Parse(k)
		require.NoError(t, err)
		require.Equal(t, apikey.KindKeygate, kind)
	}
}

func TestGenerateUnique(t *testing.T) {
	const n = 10_000
	seen := make(map[string]struct{}, n)
	for range n {
		k := generate(t, nil)
		_, dup := seen[k]
		require.False(t, dup, "duplicate key after %d", len(seen))
		seen[k] = struct{}{}
	}
}

// Entropy: the random part is 22 characters, each uniform over 62 and
// independent (rejection sampling, checked below), so a key carries
// 22·log2(62) ≈ 130.99 bits. The checksum adds none: it is a function of
// the random part.
func TestEntropyAtLeast128Bits(t *testing.T) {
	const randomChars = 22
	require.Equal(t, len("sk-kg-")+randomChars+6, apikey.Length)
	require.GreaterOrEqual(t, randomChars*math.Log2(float64(len(alphabet))), 128.0)
	require.Equal(t, `^sk-kg-[0-9A-Za-z]{28}$`, apikey.Regex, "the documented regex")
}

// Chi-square over 220,000 characters from a seeded source. A plain b%62
// without rejection would favour '0'..'7' by 25% and score in the
// thousands; uniform output scores near 61 (the degrees of freedom).
func TestGenerateIsUniform(t *testing.T) {
	r := seeded("uniformity")
	var counts [256]int
	total := 0
	for range 10_000 {
		k := generate(t, r)
		for i := len(apikey.Prefix); i < len(apikey.Prefix)+22; i++ {
			counts[k[i]]++
			total++
		}
	}
	expected := float64(total) / float64(len(alphabet))
	chi := 0.0
	for _, c := range []byte(alphabet) {
		d := float64(counts[c]) - expected
		chi += d * d / expected
	}
	t.Logf("chi-square = %.1f (df = 61)", chi)
	require.Less(t, chi, 120.0)
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy pool on fire") }

func TestGenerateReaderProblems(t *testing.T) {
	_, err := apikey.Generate(failingReader{})
	require.ErrorContains(t, err, "entropy pool on fire")

	_, err = apikey.Generate(bytes.NewReader(make([]byte, 10)))
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)

	// A source of nothing but rejected bytes must fail, not spin.
	_, err = apikey.Generate(bytes.NewReader(bytes.Repeat([]byte{0xff}, 1<<16)))
	require.Error(t, err)
}

func TestParse(t *testing.T) {
	good := generate(t, seeded("parse"))
	badSum := good[:len(good)-1] + string(next(good[len(good)-1]))
	cases := []struct {
		name string
		raw  string
		kind apikey.Kind
		err  error
	}{
		{"generated", good, apikey.KindKeygate, nil},
		{"wrong checksum", badSum, apikey.KindInvalid, apikey.ErrBadChecksum},
		{"wrong random char", good[:10] + string(next(good[10])) + good[11:], apikey.KindInvalid, apikey.ErrBadChecksum},
		{"checksum above 2^32", good[:apikey.Length-6] + "zzzzzz", apikey.KindInvalid, apikey.ErrBadChecksum},
		{"our prefix, truncated", good[:len(good)-1], apikey.KindForeign, nil},
		{"our prefix, one too long", good + "a", apikey.KindForeign, nil},
		{"our prefix, url-safe char", good[:20] + "_" + good[21:], apikey.KindForeign, nil},
		// LiteLLM: "sk-" + secrets.token_urlsafe(16); ~1 in 2^18 start "kg-".
		{"litellm generated", "sk-Kq2_fX9-uBv7TzWcQ1aLrA", apikey.KindForeign, nil},
		{"litellm with kg- start", "sk-kg-fX9-uBv7TzWcQ1aLrA", apikey.KindForeign, nil},
		{"admin chosen", "sk-1234", apikey.KindForeign, nil},
		{"non-ascii printable", "sk-schlüssel-überall", apikey.KindForeign, nil},
		{"max length", "sk-" + strings.Repeat("a", apikey.MaxLength-3), apikey.KindForeign, nil},
		{"over max length", "sk-" + strings.Repeat("a", apikey.MaxLength-2), apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"empty", "", apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"prefix only", "sk-", apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"upper-case prefix", "SK-1234", apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"hash", apikey.Hash(good), apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"jwt", "eyJhbGciOiJFUzI1NiJ9.e30.sig", apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"bearer left in", "Bearer " + good, apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"inner space", "sk-12 34", apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"trailing newline", good + "\n", apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"tab", "sk-12\t34", apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"NUL", "sk-1234\x00", apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"DEL", "sk-1234\x7f", apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"C1 control", "sk-1234\u0085", apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"no-break space", "sk-1234\u00a0", apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"zero-width space", "sk-12\u200b34", apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"bidi override", "sk-12\u202e34", apikey.KindInvalid, apikey.ErrNotAPIKey},
		{"invalid utf-8", "sk-1234\xff", apikey.KindInvalid, apikey.ErrNotAPIKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kind, err := apikey.Parse(tc.raw)
			require.Equal(t, tc.kind, kind)
			if tc.err == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.err)
			if secret := tc.raw[min(3, len(tc.raw)):]; secret != "" {
				require.NotContains(t, err.Error(), secret, "errors must not echo the key")
			}
		})
	}
}

// next returns the following base62 character, wrapping around.
func next(c byte) byte {
	return alphabet[(strings.IndexByte(alphabet, c)+1)%len(alphabet)]
}

// Exhaustive: every substitution of every character after the prefix by
// every other base62 character is refused by the checksum. CRC-32 catches
// any error confined to 32 consecutive bits, so a changed random
// character always shows; the checksum encoding is one-to-one, so a
// changed checksum character always shows.
func TestEverySingleCharacterChangeIsDetected(t *testing.T) {
	r := seeded("single-char")
	for range 20 {
		k := []byte(generate(t, r))
		for i := len(apikey.Prefix); i < len(k); i++ {
			orig := k[i]
			for _, c := range []byte(alphabet) {
				if c == orig {
					continue
				}
				k[i] = c
				kind, err := apikey.Parse(string(k))
				require.ErrorIs(t, err, apikey.ErrBadChecksum, "position %d, %q→%q", i, orig, c)
				require.Equal(t, apikey.KindInvalid, kind)
			}
			k[i] = orig
		}
	}
}

func TestHash(t *testing.T) {
	// The value LiteLLM stores for its documentation's "sk-1234".
	require.Equal(t, "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b", apikey.Hash("sk-1234"))
	h := apikey.Hash(generate(t, nil))
	require.True(t, apikey.IsHash(h))
}

func TestIsHash(t *testing.T) {
	h := apikey.Hash("sk-1234")
	require.True(t, apikey.IsHash(h))
	require.False(t, apikey.IsHash(strings.ToUpper(h)), "LiteLLM stores lowercase")
	require.False(t, apikey.IsHash(h[:63]))
	require.False(t, apikey.IsHash(h+"0"))
	require.False(t, apikey.IsHash(h[:63]+"g"))
	require.False(t, apikey.IsHash("sk-1234"))
	require.False(t, apikey.IsHash(""))
}

func TestKeyName(t *testing.T) {
	require.Equal(t, "sk-...6orh", apikey.KeyName("sk-kg-sLwX8jKvOzaBmNyR2dEpQU1S6orh"))
	require.Equal(t, "sk-...LrA9", apikey.KeyName("sk-Kq2_fX9-uBv7TzWcQ1aLrA9"))
	require.Equal(t, "sk-...ssel", apikey.KeyName("sk-geheimschluessel"))
	require.Equal(t, "sk-...üssl", apikey.KeyName("sk-geheimschlüssl"), "counts characters, not bytes")
	// Short admin-chosen keys: four characters would be most of the secret.
	require.Equal(t, "sk-...", apikey.KeyName("sk-1234"))
	require.Equal(t, "sk-...", apikey.KeyName("sk-12345678901"))
	require.Equal(t, "sk-...9012", apikey.KeyName("sk-123456789012"))
}

func TestKindString(t *testing.T) {
	require.Equal(t, "keygate", apikey.KindKeygate.String())
	require.Equal(t, "foreign", apikey.KindForeign.String())
	require.Equal(t, "invalid", apikey.KindInvalid.String())
}
