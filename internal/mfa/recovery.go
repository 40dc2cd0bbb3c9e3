package mfa

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// Recovery codes: RecoveryCodeCount per set, each 16 characters of
// base32 (80 bits), shown once as xxxx-xxxx-xxxx-xxxx and stored only as
// a SHA-256 bound to the user (80 random bits need no slow hash).
const (
	RecoveryCodeCount = 10
	recoveryLen       = 16
	recoveryAlphabet  = "abcdefghijklmnopqrstuvwxyz234567"
)

// NewRecoveryCodes makes a set of codes, formatted for display.
func NewRecoveryCodes(rand io.Reader) ([]string, error) {
	out := make([]string, RecoveryCodeCount)
	buf := make([]byte, recoveryLen)
	for i := range out {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("mfa: recovery code: %w", err)
		}
		var b strings.Builder
		for j, c := range buf {
			if j > 0 && j%4 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(recoveryAlphabet[c&31]) // 256 is a multiple of 32: no bias
		}
		out[i] = b.String()
	}
	return out, nil
}

// LooksLikeRecoveryCode reports whether a normalised code has a recovery
// code's shape.
func LooksLikeRecoveryCode(code string) bool {
	if len(code) != recoveryLen {
		return false
	}
	for i := 0; i < len(code); i++ {
		if !strings.ContainsRune(recoveryAlphabet, rune(code[i])) {
			return false
		}
	}
	return true
}

// HashRecoveryCode is how a code is stored and looked up: SHA-256 over
// the user id and the normalised code, so equal codes of two users (or a
// table of precomputed hashes) tell nothing.
func HashRecoveryCode(userID, code string) string {
	h := sha256.New()
	h.Write([]byte("keygate-recovery-v1\x00"))
	h.Write([]byte(userID))
	h.Write([]byte{0})
	h.Write([]byte(NormalizeCode(code)))
	return hex.EncodeToString(h.Sum(nil))
}
