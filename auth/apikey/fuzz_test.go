package apikey_test

import (
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/apikey"
)

// FuzzParse checks, for arbitrary input:
//   - Parse never panics, and its answer is consistent with Regex:
//     KindKeygate and ErrBadChecksum only for strings matching it,
//     KindForeign only for other "sk-" strings, errors only with
//     KindInvalid;
//   - a key generated from any seed parses as KindKeygate;
//   - replacing one character of that key's random or checksum part is
//     always caught: by the checksum if the new character is base62,
//     otherwise the key no longer matches Regex and is not ours.
func FuzzParse(f *testing.F) {
	re := regexp.MustCompile(apikey.Regex)
	f.Add("sk-kg-sLwX8jKvOzaBmNyR2dEpQU1S6orh", []byte("seed"), uint8(0), byte('A'))
	f.Add("sk-kg-sLwX8jKvOzaBmNyR2dEpQU1S6orH", []byte{}, uint8(27), byte('_'))
	f.Add("sk-1234", []byte{1, 2, 3}, uint8(5), byte(0))
	f.Add("sk-kg-", []byte("x"), uint8(200), byte(' '))
	f.Add("Bearer sk-1234", []byte("y"), uint8(21), byte(0xff))
	f.Add("sk-\xff\xfe", []byte("z"), uint8(22), byte('z'))
	f.Add(strings.Repeat("sk-", 100), []byte("long"), uint8(1), byte('0'))

	f.Fuzz(func(t *testing.T, raw string, seed []byte, pos uint8, repl byte) {
		checkConsistent(t, re, raw)

		key, err := apikey.Generate(rand.NewChaCha8(sha256.Sum256(seed)))
		require.NoError(t, err)
		kind, err := apikey.Parse(key)
		require.NoError(t, err)
		require.Equal(t, apikey.KindKeygate, kind)
		require.Regexp(t, re, key)

		i := len(apikey.Prefix) + int(pos)%(apikey.Length-len(apikey.Prefix))
		if key[i] == repl {
			return
		}
		mutated := key[:i] + string([]byte{repl}) + key[i+1:]
		kind, err = apikey.Parse(mutated)
		require.NotEqual(t, apikey.KindKeygate, kind, "changed key accepted: position %d", i)
		if isBase62(repl) {
			require.ErrorIs(t, err, apikey.ErrBadChecksum)
		}
		checkConsistent(t, re, mutated)
	})
}

func checkConsistent(t *testing.T, re *regexp.Regexp, raw string) {
	t.Helper()
	kind, err := apikey.Parse(raw)
	switch {
	case err != nil:
		require.Equal(t, apikey.KindInvalid, kind)
		require.True(t, errors.Is(err, apikey.ErrNotAPIKey) || errors.Is(err, apikey.ErrBadChecksum), "unexpected error %v", err)
		if errors.Is(err, apikey.ErrBadChecksum) {
			require.Regexp(t, re, raw)
		}
	case kind == apikey.KindKeygate:
		require.Regexp(t, re, raw)
		require.Len(t, raw, apikey.Length)
	case kind == apikey.KindForeign:
		require.True(t, strings.HasPrefix(raw, "sk-"))
		require.LessOrEqual(t, len(raw), apikey.MaxLength)
		require.NotRegexp(t, re, raw)
	default:
		t.Fatalf("kind %v without error", kind)
	}
}

func isBase62(c byte) bool { return strings.IndexByte(alphabet, c) >= 0 }
