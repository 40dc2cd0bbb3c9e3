package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"

	"golang.org/x/crypto/hkdf"
)

const (
	// sealV1 prefixes every sealed blob so the format (KDF, cipher, layout)
	// can change later without guessing what an old row holds.
	sealV1 byte = 1
	// MinSecretLen is the shortest operator secret NewSealer accepts. HKDF
	// is not a password hash: the secret must already be high-entropy
	// (e.g. `openssl rand -hex 32`); the length floor only catches obvious
	// mistakes such as a placeholder.
	MinSecretLen = 16
	// sealInfo separates this use of the operator secret from any other key
	// derived from it.
	sealInfo    = "keygate/session/signing-key-seal/v1"
	gcmNonceLen = 12
)

// Sealer encrypts and decrypts signing keys' private parts with
// AES-256-GCM under a key derived (HKDF-SHA256) from the operator secret.
// Layout of a sealed blob: version byte | 12-byte random nonce | ciphertext
// and tag. The version byte and the caller's associated data (the key id)
// are authenticated, so a sealed key copied onto another row fails to open.
// A Sealer is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer derives the sealing key from secret. It fails with ErrNoSecret
// when secret is empty and when it is shorter than MinSecretLen.
func NewSealer(secret string) (*Sealer, error) {
	if secret == "" {
		return nil, ErrNoSecret
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("%w: it must be at least %d characters long", ErrNoSecret, MinSecretLen)
	}
	key := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, []byte(secret), nil, []byte(sealInfo)), key); err != nil {
		return nil, fmt.Errorf("session: derive sealing key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("session: sealing cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("session: sealing cipher: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext bound to aad (which must be given again to Open).
func (s *Sealer) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+gcmNonceLen, 1+gcmNonceLen+len(plaintext)+s.aead.Overhead())
	out[0] = sealV1
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		return nil, fmt.Errorf("session: seal nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:], plaintext, sealAAD(aad)), nil
}

// Open decrypts a blob made by Seal with the same secret and aad. Any
// mismatch (other secret, other aad, altered or truncated blob) returns an
// error wrapping ErrSealOpen.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 1+gcmNonceLen+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: sealed key is truncated", ErrSealOpen)
	}
	if sealed[0] != sealV1 {
		return nil, fmt.Errorf("%w: unknown seal version %d", ErrSealOpen, sealed[0])
	}
	nonce := sealed[1 : 1+gcmNonceLen]
	pt, err := s.aead.Open(nil, nonce, sealed[1+gcmNonceLen:], sealAAD(aad))
	if err != nil {
		return nil, fmt.Errorf("%w: KEYGATE_SECRET (or LITELLM_SALT_KEY) differs from the secret that sealed it, or the stored key was altered", ErrSealOpen)
	}
	return pt, nil
}

func sealAAD(aad []byte) []byte {
	out := make([]byte, 0, 1+len(aad))
	out = append(out, sealV1)
	return append(out, aad...)
}
