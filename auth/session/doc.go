// Package session mints and verifies Keygate's session JWTs and manages the
// keys that sign them.
//
// The pieces:
//
//   - Sealer encrypts signing keys' private parts with a key derived from
//     the operator secret (KEYGATE_SECRET / LITELLM_SALT_KEY) before they
//     reach the database, so a database dump alone cannot forge sessions.
//   - Keyring loads the signing keys from a KeyStore (the database, shared by
//     every replica), creates and rotates them and publishes their public
//     halves as a JWKS (RFC 7517).
//   - Issuer mints short-lived tokens for a login session and verifies them,
//     pinned to the one configured algorithm.
//
// A verified token proves only that Keygate issued it and that it has not
// expired. Whether its session (the sid claim) is still alive — not logged
// out, not revoked, user not blocked — is checked by the caller against the
// session row; nothing in this package, including Verify's result cache,
// knows about revocation.
package session

import "errors"

// Sentinel errors; test with errors.Is. Messages never contain a token or a
// key.
var (
	// ErrInvalidToken: malformed, wrongly signed, signed with an unknown or
	// retired key, with another algorithm, or with wrong iss/aud/nbf/iat.
	ErrInvalidToken = errors.New("session: invalid token")
	// ErrExpiredToken: correctly signed but past its exp.
	ErrExpiredToken = errors.New("session: token expired")
	// ErrSessionExpired: Mint was asked for a token of a session that has
	// already ended.
	ErrSessionExpired = errors.New("session: session already expired")
	// ErrNoSigningKey: no key of the configured algorithm can sign now and
	// none could be created.
	ErrNoSigningKey = errors.New("session: no usable signing key")
	// ErrNoSecret: the operator secret that seals signing keys is missing.
	ErrNoSecret = errors.New("session: KEYGATE_SECRET (or LITELLM_SALT_KEY) is required to encrypt signing keys")
	// ErrSealOpen: a sealed private key could not be decrypted, almost always
	// because the operator secret differs from the one that sealed it.
	ErrSealOpen = errors.New("session: cannot decrypt sealed signing key")
)
