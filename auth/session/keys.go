package session

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// Supported signing algorithms.
const (
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
)

// rsaBits is the size of generated RSA keys. 2048 bits (~112-bit security)
// is what NIST accepts through 2030 and what every JWT library expects;
// keys live for weeks, not years, and signing cost grows roughly with the
// cube of the size, so 3072 would triple the cost of every login for no
// practical gain. ES256 (the default) is stronger and cheaper anyway.
const rsaBits = 2048

// keyMaterial is the immutable, parsed public part of a stored key.
type keyMaterial struct {
	kid string
	alg string
	pub crypto.PublicKey // *ecdsa.PublicKey or *rsa.PublicKey
	pem string           // as stored; a changed row is parsed again
	jwk JWK
}

// kidOf derives the key id from the public key's PKIX DER: the first 16
// bytes of its SHA-256, base64url without padding. Every replica derives
// the same id, and a stored row whose id does not match its key is
// detected.
func kidOf(pubDER []byte) string {
	sum := sha256.Sum256(pubDER)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// generateKey makes a fresh private key for alg. Since Go 1.26 the key
// generators ignore r and always use the system CSPRNG.
func generateKey(alg string, r io.Reader) (crypto.Signer, error) {
	switch alg {
	case AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), r)
	case AlgRS256:
		return rsa.GenerateKey(r, rsaBits)
	default:
		return nil, fmt.Errorf("session: unsupported algorithm %q", alg)
	}
}

// encodePublic returns the PKIX DER and its PEM form.
func encodePublic(pub crypto.PublicKey) (der []byte, pemStr string, err error) {
	der, err = x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, "", fmt.Errorf("session: encode public key: %w", err)
	}
	return der, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// parsePublic parses a stored public key, checks that it suits alg and
// that kid is its id, and builds its JWK.
func parsePublic(kid, alg, pemStr string) (*keyMaterial, error) {
	block, _ := pem.Decode([]byte(pemStr))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("public key is not a PEM PUBLIC KEY block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	if err := checkKeyType(alg, pub); err != nil {
		return nil, err
	}
	if got := kidOf(block.Bytes); got != kid {
		return nil, errors.New("kid does not match the public key")
	}
	jwk, err := jwkOf(kid, alg, pub)
	if err != nil {
		return nil, err
	}
	return &keyMaterial{kid: kid, alg: alg, pub: pub, pem: pemStr, jwk: jwk}, nil
}

func checkKeyType(alg string, pub crypto.PublicKey) error {
	switch alg {
	case AlgES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() {
			return errors.New("ES256 key is not an ECDSA P-256 key")
		}
	case AlgRS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok || k.N.BitLen() < rsaBits {
			return fmt.Errorf("RS256 key is not an RSA key of at least %d bits", rsaBits)
		}
	default:
		return fmt.Errorf("unsupported algorithm %q", alg)
	}
	return nil
}

// openPrivate unseals a stored private key and checks that it belongs to
// m's public key. The result is *ecdsa.PrivateKey or *rsa.PrivateKey, the
// types golang-jwt's signing methods expect.
func openPrivate(s *Sealer, m *keyMaterial, sealed []byte) (crypto.Signer, error) {
	der, err := s.Open(sealed, []byte(m.kid))
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("private key cannot sign")
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if eq, ok := signer.Public().(equaler); !ok || !eq.Equal(m.pub) {
		return nil, errors.New("private key does not match the public key")
	}
	return signer, nil
}

// JWK is one public key in RFC 7517 form.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is an RFC 7517 JWK Set, ready for encoding/json.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

func jwkOf(kid, alg string, pub crypto.PublicKey) (JWK, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	j := JWK{Kid: kid, Alg: alg, Use: "sig"}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		// Uncompressed SEC 1 point: 0x04 | X | Y, each coordinate padded to
		// the field size as RFC 7518 §6.2.1.2 requires.
		pt, err := k.Bytes()
		if err != nil || len(pt) != 65 {
			return JWK{}, errors.New("encode P-256 point")
		}
		j.Kty, j.Crv, j.X, j.Y = "EC", "P-256", b64(pt[1:33]), b64(pt[33:])
	case *rsa.PublicKey:
		j.Kty, j.N, j.E = "RSA", b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes())
	default:
		return JWK{}, errors.New("unsupported public key type")
	}
	return j, nil
}
