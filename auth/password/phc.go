package password

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Bounds on what a stored PHC string may ask for. A hash row is data, and
// data must not be able to make the server allocate gigabytes, spin for
// minutes, or accept almost any password; these ceilings and floors are
// checked before argon2 runs.
const (
	// MaxMemory is the largest memory cost accepted, in KiB (1 GiB).
	MaxMemory = 1 << 20
	// MaxTime is the largest number of passes accepted.
	MaxTime = 100
	// MaxThreads is the largest degree of parallelism accepted.
	MaxThreads = 64
	// MinSaltLen and MaxSaltLen bound the salt in bytes. 8 is argon2's own
	// minimum (RFC 9106 §3.1).
	MinSaltLen = 8
	MaxSaltLen = 64
	// MinKeyLen and MaxKeyLen bound the derived key in bytes. The floor is
	// above argon2's 4 so a tampered row with a 4-byte tag cannot match
	// one password in 2^32 by chance.
	MinKeyLen = 16
	MaxKeyLen = 64
	// maxEncodedLen caps the PHC string before any parsing: the longest
	// legal string (64-byte salt and key, ten-digit numbers) is < 220
	// bytes, so anything longer is garbage and is rejected without
	// allocating for it.
	maxEncodedLen = 256
)

// argon2Version is the only argon2 version golang.org/x/crypto implements
// (0x13 = 19). PHC strings without a version mean 0x10 and are rejected.
const argon2Version = 19

// phcPrefix starts every string this package writes or accepts.
const phcPrefix = "$argon2id$"

// b64 is the PHC base64 flavour: standard alphabet, no padding. Strict
// rejects non-zero trailing bits, so each hash has exactly one encoding.
func b64() *base64.Encoding { return base64.RawStdEncoding.Strict() }

// decoded is a parsed PHC string.
type decoded struct {
	params Params
	salt   []byte
	key    []byte
}

// encode renders the PHC string for params, salt and key.
func encode(p Params, salt, key []byte) string {
	enc := b64()
	return fmt.Sprintf("%sv=%d$m=%d,t=%d,p=%d$%s$%s", phcPrefix, argon2Version,
		p.Memory, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// parse decodes an argon2id PHC string strictly: fixed field order, plain
// decimal numbers without sign or leading zeros, canonical base64, and
// every parameter inside the bounds above. It never panics; every failure
// wraps ErrInvalidHash and never quotes the input (it is a secret).
func parse(s string) (decoded, error) {
	var d decoded
	if len(s) > maxEncodedLen {
		return d, fmt.Errorf("%w: longer than %d bytes", ErrInvalidHash, maxEncodedLen)
	}
	rest, ok := strings.CutPrefix(s, phcPrefix)
	if !ok {
		return d, fmt.Errorf("%w: not an argon2id PHC string", ErrInvalidHash)
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 4 {
		return d, fmt.Errorf("%w: want 4 fields after the algorithm, got %d", ErrInvalidHash, len(fields))
	}
	v, ok := strings.CutPrefix(fields[0], "v=")
	if !ok {
		return d, fmt.Errorf("%w: missing version", ErrInvalidHash)
	}
	ver, err := parseUint(v, 32)
	if err != nil || ver != argon2Version {
		return d, fmt.Errorf("%w: unsupported version", ErrInvalidHash)
	}
	if err := parseParams(fields[1], &d.params); err != nil {
		return d, err
	}
	if d.salt, err = decodeB64(fields[2], MinSaltLen, MaxSaltLen, "salt"); err != nil {
		return d, err
	}
	if d.key, err = decodeB64(fields[3], MinKeyLen, MaxKeyLen, "key"); err != nil {
		return d, err
	}
	d.params.SaltLen = uint32(len(d.salt))
	d.params.KeyLen = uint32(len(d.key))
	return d, nil
}

// parseParams reads "m=<kib>,t=<passes>,p=<threads>" in exactly that
// order, the order the reference implementation writes. Optional PHC
// parameters (keyid, data) are not something argon2id in x/crypto can
// honour, so they are rejected rather than ignored.
func parseParams(s string, p *Params) error {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return fmt.Errorf("%w: want m,t,p parameters", ErrInvalidHash)
	}
	names := [3]string{"m=", "t=", "p="}
	var vals [3]uint64
	for i, part := range parts {
		num, ok := strings.CutPrefix(part, names[i])
		if !ok {
			return fmt.Errorf("%w: parameter %d is not %q", ErrInvalidHash, i+1, names[i][:1])
		}
		n, err := parseUint(num, 32)
		if err != nil {
			return fmt.Errorf("%w: parameter %q: %w", ErrInvalidHash, names[i][:1], err)
		}
		vals[i] = n
	}
	p.Memory, p.Time = uint32(vals[0]), uint32(vals[1])
	if vals[2] > MaxThreads {
		return fmt.Errorf("%w: parallelism %d above %d", ErrInvalidHash, vals[2], MaxThreads)
	}
	p.Threads = uint8(vals[2])
	if err := p.checkCost(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidHash, err)
	}
	return nil
}

// parseUint accepts only canonical decimal: digits, no sign, no leading
// zero (PHC §"Decimal Encoding"), so one value has one spelling.
func parseUint(s string, bits int) (uint64, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("not a canonical decimal")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a canonical decimal")
		}
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, errors.New("out of range")
	}
	return n, nil
}

// decodeB64 decodes a salt or key, checking its length before allocating.
func decodeB64(s string, minLen, maxLen uint32, what string) ([]byte, error) {
	enc := b64()
	if err := checkLen(what, uint32(min(enc.DecodedLen(len(s)), maxEncodedLen)), minLen, maxLen); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHash, err)
	}
	// The decoder skips '\r' and '\n'; refusing every byte outside the
	// alphabet keeps one spelling per value.
	if strings.IndexFunc(s, notB64) >= 0 {
		return nil, fmt.Errorf("%w: %s is not canonical unpadded base64", ErrInvalidHash, what)
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not canonical unpadded base64", ErrInvalidHash, what)
	}
	if err := checkLen(what, uint32(len(b)), minLen, maxLen); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHash, err)
	}
	return b, nil
}

func notB64(r rune) bool {
	return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '/')
}
