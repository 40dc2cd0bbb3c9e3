package sso

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// FlowLifetime is how long a started login may take to come back.
const FlowLifetime = 10 * time.Minute

// maxSealed bounds a sealed value so it fits in one cookie (4096 bytes
// including name and attributes).
const maxSealed = 3500

// FlowState is what the browser carries, sealed in a cookie, between
// /sso/login and /sso/callback.
type FlowState struct {
	Provider string    `json:"p"`
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	ReturnTo string    `json:"r,omitempty"`
	Expires  time.Time `json:"e"`
}

// NewFlow starts a login: a 256-bit state and nonce and a 43-character
// PKCE verifier (RFC 7636 §4.1: 32 random octets, base64url), expiring
// FlowLifetime after now. It fails only if random fails.
func NewFlow(random io.Reader, provider, returnTo string, now time.Time) (FlowState, error) {
	var b [3 * 32]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return FlowState{}, fmt.Errorf("sso: reading randomness: %w", err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return FlowState{
		Provider: provider, ReturnTo: returnTo, Expires: now.Add(FlowLifetime).UTC(),
		State: enc(b[:32]), Nonce: enc(b[32:64]), Verifier: enc(b[64:]),
	}, nil
}

// StateCodec seals FlowStates with AES-256-GCM: the user can neither forge
// nor read one (the PKCE verifier stays private to Keygate).
type StateCodec struct {
	aead cipher.AEAD
}

// stateKeyLabel separates this key's use from any other use of the same
// secret.
const stateKeyLabel = "keygate sso flow state v1\x00"

// NewStateCodec derives the sealing key from key (at least 32 bytes, e.g.
// a server secret).
func NewStateCodec(key []byte) (*StateCodec, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("%w: state key must be at least 32 bytes", ErrConfig)
	}
	k := sha256.Sum256(append([]byte(stateKeyLabel), key...))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &StateCodec{aead: aead}, nil
}

// Seal encrypts and authenticates fs into a cookie-safe string.
func (c *StateCodec) Seal(fs FlowState) (string, error) {
	plain, err := json.Marshal(fs)
	if err != nil {
		return "", fmt.Errorf("sso: encoding flow state: %w", err)
	}
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("sso: reading randomness: %w", err)
	}
	out := base64.RawURLEncoding.EncodeToString(c.aead.Seal(nonce, nonce, plain, nil))
	if len(out) > maxSealed {
		return "", fmt.Errorf("sso: flow state too large (%d bytes)", len(out))
	}
	return out, nil
}

// Open authenticates and decrypts a sealed value and checks it has not
// expired at now.
func (c *StateCodec) Open(value string, now time.Time) (FlowState, error) {
	if value == "" || len(value) > maxSealed {
		return FlowState{}, fmt.Errorf("%w: missing or oversized", ErrInvalidState)
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < c.aead.NonceSize()+c.aead.Overhead() {
		return FlowState{}, fmt.Errorf("%w: malformed", ErrInvalidState)
	}
	ns := c.aead.NonceSize()
	plain, err := c.aead.Open(nil, raw[:ns], raw[ns:], nil)
	if err != nil {
		return FlowState{}, fmt.Errorf("%w: not sealed by this server", ErrInvalidState)
	}
	var fs FlowState
	if err := json.Unmarshal(plain, &fs); err != nil {
		return FlowState{}, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	if !now.Before(fs.Expires) {
		return FlowState{}, fmt.Errorf("%w: expired", ErrInvalidState)
	}
	if fs.State == "" || fs.Nonce == "" || fs.Verifier == "" {
		return FlowState{}, fmt.Errorf("%w: incomplete", ErrInvalidState)
	}
	return fs, nil
}

// StateMatches compares the state returned by the IdP with the sealed one
// in constant time.
func StateMatches(fs FlowState, returned string) bool {
	return returned != "" && subtle.ConstantTimeCompare([]byte(returned), []byte(fs.State)) == 1
}
