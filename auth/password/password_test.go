package password_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/password"
)

// cheap keeps functional tests fast; the format and limits do not depend
// on the cost. Tests of DefaultParams use the real cost.
func cheap() password.Params {
	return password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
}

func newHasher(t testing.TB, p password.Params, maxConcurrent int) *password.Hasher {
	t.Helper()
	h, err := password.New(p, maxConcurrent)
	require.NoError(t, err)
	return h
}

// phcRE is the shape of a hash with DefaultParams: 16-byte salt (22
// base64 chars) and 32-byte key (43 chars), no padding.
var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestDefaultParamsAreOWASPMinimum(t *testing.T) {
	p := password.DefaultParams()
	require.Equal(t, password.Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, p)
	require.NoError(t, p.Validate())
}

func TestHashAndVerifyWithDefaultParams(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, password.DefaultParams(), 0)

	phc, err := h.Hash(ctx, "correct horse battery")
	require.NoError(t, err)
	require.Regexp(t, phcRE, phc)

	ok, rehash, err := h.Verify(ctx, phc, "correct horse battery")
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, rehash)

	ok, rehash, err = h.Verify(ctx, phc, "correct horse batterY")
	require.NoError(t, err)
	require.False(t, ok)
	require.False(t, rehash)
}

func TestHashSaltsEveryCall(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, cheap(), 0)
	a, err := h.Hash(ctx, "same password")
	require.NoError(t, err)
	b, err := h.Hash(ctx, "same password")
	require.NoError(t, err)
	require.NotEqual(t, a, b)
	for _, phc := range []string{a, b} {
		ok, _, err := h.Verify(ctx, phc, "same password")
		require.NoError(t, err)
		require.True(t, ok)
	}
}

// The reference implementation's test vector (phc-winner-argon2 test.c,
// argon2id v=19): proves our encoding and parameters mean what every
// other argon2 library means, so hashes can be imported and exported.
func TestVerifyReferenceVector(t *testing.T) {
	const ref = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	h := newHasher(t, password.DefaultParams(), 0)
	ok, rehash, err := h.Verify(context.Background(), ref, "password")
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, rehash, "an 8-byte salt is below the 16-byte default")

	ok, _, err = h.Verify(context.Background(), ref, "passwore")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestNeedsRehash(t *testing.T) {
	ctx := context.Background()
	current := password.Params{Memory: 128, Time: 2, Threads: 2, SaltLen: 16, KeyLen: 32}
	h := newHasher(t, current, 0)
	with := func(f func(*password.Params)) password.Params { p := current; f(&p); return p }
	cases := []struct {
		name   string
		stored password.Params
		rehash bool
	}{
		{"same", current, false},
		{"less memory", with(func(p *password.Params) { p.Memory = 64 }), true},
		{"fewer passes", with(func(p *password.Params) { p.Time = 1 }), true},
		{"fewer lanes", with(func(p *password.Params) { p.Threads = 1 }), true},
		{"shorter salt", with(func(p *password.Params) { p.SaltLen = 8 }), true},
		{"shorter key", with(func(p *password.Params) { p.KeyLen = 16 }), true},
		{"stronger", with(func(p *password.Params) { p.Memory, p.Time, p.KeyLen = 256, 3, 64 }), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			phc, err := newHasher(t, tc.stored, 0).Hash(ctx, "hunter2hunter2")
			require.NoError(t, err)

			ok, rehash, err := h.Verify(ctx, phc, "hunter2hunter2")
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, tc.rehash, rehash)

			// A wrong password never asks for a rehash: there is nothing
			// to rehash it with.
			ok, rehash, err = h.Verify(ctx, phc, "hunter3hunter3")
			require.NoError(t, err)
			require.False(t, ok)
			require.False(t, rehash)
		})
	}
}

func TestHashEnforcesPolicy(t *testing.T) {
	h := newHasher(t, cheap(), 0)
	_, err := h.Hash(context.Background(), "short")
	require.ErrorIs(t, err, password.ErrTooShort)
	_, err = h.Hash(context.Background(), strings.Repeat("x", 129))
	require.ErrorIs(t, err, password.ErrTooLong)
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		pw   string
		want error
	}{
		{"empty", "", password.ErrTooShort},
		{"seven ascii", "abcdefg", password.ErrTooShort},
		{"eight ascii", "abcdefgh", nil},
		// Three CJK characters are 9 bytes: counting bytes would accept them.
		{"three CJK runes", "密码好", password.ErrTooShort},
		{"eight CJK runes", "密码好密码好密码", nil},
		{"eight emoji (32 bytes)", strings.Repeat("🔑", 8), nil},
		{"128 ascii", strings.Repeat("a", 128), nil},
		{"129 ascii", strings.Repeat("a", 129), password.ErrTooLong},
		// 128 four-byte runes are 512 bytes and still allowed: the limit
		// is on characters.
		{"128 emoji", strings.Repeat("🔑", 128), nil},
		{"129 emoji", strings.Repeat("🔑", 129), password.ErrTooLong},
		{"invalid utf-8", "abcdefgh\xff", password.ErrInvalidUTF8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := password.Validate(tc.pw)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			if tc.pw != "" {
				require.NotContains(t, err.Error(), tc.pw, "policy errors must not echo the password")
			}
		})
	}
}

func TestNewRejectsUnusableParams(t *testing.T) {
	with := func(f func(*password.Params)) password.Params { p := cheap(); f(&p); return p }
	cases := map[string]password.Params{
		"zero":            {},
		"time 0":          with(func(p *password.Params) { p.Time = 0 }),
		"time too high":   with(func(p *password.Params) { p.Time = password.MaxTime + 1 }),
		"threads 0":       with(func(p *password.Params) { p.Threads = 0 }),
		"threads too hi":  with(func(p *password.Params) { p.Threads = password.MaxThreads + 1 }),
		"memory < 8*p":    with(func(p *password.Params) { p.Threads, p.Memory = 4, 31 }),
		"memory > 1 GiB":  with(func(p *password.Params) { p.Memory = password.MaxMemory + 1 }),
		"salt too short":  with(func(p *password.Params) { p.SaltLen = password.MinSaltLen - 1 }),
		"salt too long":   with(func(p *password.Params) { p.SaltLen = password.MaxSaltLen + 1 }),
		"key too short":   with(func(p *password.Params) { p.KeyLen = password.MinKeyLen - 1 }),
		"key too long":    with(func(p *password.Params) { p.KeyLen = password.MaxKeyLen + 1 }),
		"memory at floor": with(func(p *password.Params) { p.Memory = 7 }),
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := password.New(p, 1)
			require.ErrorIs(t, err, password.ErrInvalidParams)
		})
	}
}

func TestVerifyRejectsMalformedAndAbsurdHashes(t *testing.T) {
	const salt, key = "c29tZXNhbHRzb21lc2FsdA", "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	ok := "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key
	cases := map[string]string{
		"empty":               "",
		"prefix only":         "$argon2id$",
		"argon2i":             strings.Replace(ok, "argon2id", "argon2i", 1),
		"bcrypt":              "$2y$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"scrypt (LiteLLM)":    "scrypt:32768:8:1$abcd$ef01",
		"no version":          "$argon2id$m=64,t=1,p=1$" + salt + "$" + key,
		"version 16":          strings.Replace(ok, "v=19", "v=16", 1),
		"version 019":         strings.Replace(ok, "v=19", "v=019", 1),
		"missing key":         "$argon2id$v=19$m=64,t=1,p=1$" + salt,
		"extra field":         ok + "$AAAA",
		"params out of order": strings.Replace(ok, "m=64,t=1,p=1", "t=1,m=64,p=1", 1),
		"keyid param":         strings.Replace(ok, "p=1", "p=1,keyid=AAAA", 1),
		"leading zero":        strings.Replace(ok, "m=64", "m=064", 1),
		"plus sign":           strings.Replace(ok, "t=1", "t=+1", 1),
		"negative":            strings.Replace(ok, "t=1", "t=-1", 1),
		"uint32 overflow":     strings.Replace(ok, "m=64", "m=4294967296", 1),
		"memory above 1 GiB":  strings.Replace(ok, "m=64", "m=1048577", 1),
		"memory below 8p":     strings.Replace(ok, "m=64,t=1,p=1", "m=15,t=1,p=2", 1),
		"time 0":              strings.Replace(ok, "t=1", "t=0", 1),
		"time above 100":      strings.Replace(ok, "t=1", "t=101", 1),
		"threads 0":           strings.Replace(ok, "p=1", "p=0", 1),
		"threads above 64":    strings.Replace(ok, "m=64,t=1,p=1", "m=1024,t=1,p=65", 1),
		"threads above 255":   strings.Replace(ok, "p=1", "p=256", 1),
		"salt too short":      "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbA$" + key,
		"salt too long":       "$argon2id$v=19$m=64,t=1,p=1$" + strings.Repeat("A", 88) + "$" + key,
		"key too short":       "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$AAAAAAAAAAAAAAAAAAAA",
		"key too long":        "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 88),
		"padded base64":       ok + "=",
		"non-canonical b64":   "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:42] + "d",
		"newline in base64":   "$argon2id$v=19$m=64,t=1,p=1$" + salt[:10] + "\n" + salt[10:] + "$" + key,
		"url-safe base64":     "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.ReplaceAll(key+"-", "-", "_"),
		"trailing space":      ok + " ",
		"huge":                ok + strings.Repeat("A", 10000),
	}
	h := newHasher(t, cheap(), 0)
	// The well-formed base string must pass, or the cases prove nothing.
	_, _, err := h.Verify(context.Background(), ok, "whatever1")
	require.NoError(t, err)
	for name, phc := range cases {
		t.Run(name, func(t *testing.T) {
			got, rehash, err := h.Verify(context.Background(), phc, "whatever1")
			require.ErrorIs(t, err, password.ErrInvalidHash)
			require.False(t, got)
			require.False(t, rehash)
			if len(phc) > 8 {
				require.NotContains(t, err.Error(), phc, "errors must not quote the stored hash")
			}
		})
	}
}

func TestVerifyDummyDoesTheWork(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, cheap(), 0)
	require.Zero(t, h.DummyVerifications())

	require.NoError(t, h.VerifyDummy(ctx, "any password at all"))
	require.NoError(t, h.VerifyDummy(ctx, ""))
	require.Equal(t, uint64(2), h.DummyVerifications())

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, h.VerifyDummy(cancelled, "any password at all"), context.Canceled)
	require.Equal(t, uint64(2), h.DummyVerifications(), "a cancelled wait computes nothing")
}

// Over-long input is refused the same way for known and unknown users, so
// it reveals nothing about the account and costs no KDF run.
func TestVerifyOverlongPasswordCostsNothing(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, cheap(), 0)
	phc, err := h.Hash(ctx, "a fine password")
	require.NoError(t, err)
	long := strings.Repeat("a", 4*password.MaxLength+1)

	ok, rehash, err := h.Verify(ctx, phc, long)
	require.NoError(t, err)
	require.False(t, ok)
	require.False(t, rehash)

	require.NoError(t, h.VerifyDummy(ctx, long))
	require.Zero(t, h.DummyVerifications())
}

func TestCancelledContext(t *testing.T) {
	h := newHasher(t, cheap(), 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.Hash(ctx, "a fine password")
	require.ErrorIs(t, err, context.Canceled)

	phc, err := h.Hash(context.Background(), "a fine password")
	require.NoError(t, err)
	_, _, err = h.Verify(ctx, phc, "a fine password")
	require.True(t, errors.Is(err, context.Canceled))
}
