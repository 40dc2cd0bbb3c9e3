package session

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer defaults and limits.
const (
	DefaultAudience = "keygate"
	// DefaultLeeway tolerates this much clock difference between replicas
	// on exp, nbf and iat. Replicas share a database and normally run NTP,
	// so skew is well under a second; 5 s keeps expiry tight.
	DefaultLeeway = 5 * time.Second
	// MaxLeeway is the largest leeway accepted.
	MaxLeeway = 30 * time.Second
	// DefaultCacheSize and DefaultCacheTTL bound Verify's result cache.
	DefaultCacheSize = 10000
	DefaultCacheTTL  = 30 * time.Second
)

// IssuerOptions configures an Issuer.
type IssuerOptions struct {
	// Issuer is the iss claim (Keygate's public base URL); required.
	Issuer string
	// Audience is the aud claim of minted tokens (default ["keygate"]).
	// Verify accepts a token whose aud contains any of these.
	Audience []string
	// Leeway for exp/nbf/iat: 0 means DefaultLeeway, negative means none,
	// at most MaxLeeway.
	Leeway time.Duration
	// CacheSize caps Verify's result cache: 0 means DefaultCacheSize,
	// negative disables the cache.
	CacheSize int
	// CacheTTL is how long a verification is reused at most (default
	// DefaultCacheTTL); never beyond the token's exp.
	CacheTTL time.Duration
}

// Issuer mints and verifies session tokens with a Keyring's keys. It is
// safe for concurrent use.
type Issuer struct {
	kr       *Keyring
	issuer   string
	audience []string
	cacheTTL time.Duration
	cache    *verifyCache // nil when disabled
	parser   *jwt.Parser
	method   jwt.SigningMethod
}

// NewIssuer checks opts and returns an Issuer over kr.
func NewIssuer(kr *Keyring, opts IssuerOptions) (*Issuer, error) {
	if kr == nil {
		return nil, errors.New("session: NewIssuer needs a Keyring")
	}
	if opts.Issuer == "" {
		return nil, errors.New("session: issuer URL is required")
	}
	aud := slices.Clone(opts.Audience)
	if len(aud) == 0 {
		aud = []string{DefaultAudience}
	}
	if slices.Contains(aud, "") {
		return nil, errors.New("session: empty audience")
	}
	leeway := opts.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	case leeway > MaxLeeway:
		return nil, fmt.Errorf("session: leeway %v exceeds %v", leeway, MaxLeeway)
	}
	i := &Issuer{kr: kr, issuer: opts.Issuer, audience: aud, cacheTTL: opts.CacheTTL}
	if i.cacheTTL <= 0 {
		i.cacheTTL = DefaultCacheTTL
	}
	switch {
	case opts.CacheSize == 0:
		i.cache = newVerifyCache(DefaultCacheSize)
	case opts.CacheSize > 0:
		i.cache = newVerifyCache(opts.CacheSize)
	}
	i.method = jwt.GetSigningMethod(kr.alg)
	i.parser = jwt.NewParser(
		// Pinned: alg "none", HS256 (key confusion) and the other
		// asymmetric algorithm are refused before any key is looked up.
		jwt.WithValidMethods([]string{kr.alg}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(opts.Issuer),
		jwt.WithAudience(aud...),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(kr.now),
		jwt.WithStrictDecoding(),
	)
	return i, nil
}

// MintInput describes the session a token is minted for.
type MintInput struct {
	UserID      string
	Email       string
	Role        string
	LoginMethod string
	// AMR is the session's authentication methods (the amr claim).
	AMR       []string
	Teams     []string
	SessionID string
	// SessionExpiresAt caps the token's exp; zero means no cap beyond
	// TokenTTL.
	SessionExpiresAt time.Time
}

// Mint signs a token for in with the current key: exp = now + TokenTTL, but
// never after the session ends. It returns the token and its exp.
func (i *Issuer) Mint(ctx context.Context, in MintInput) (string, time.Time, error) {
	if in.UserID == "" || in.SessionID == "" {
		return "", time.Time{}, errors.New("session: Mint needs a user id and a session id")
	}
	now := i.kr.now().Truncate(time.Second) // JWT times are whole seconds
	exp := now.Add(i.kr.ttl)
	if !in.SessionExpiresAt.IsZero() && in.SessionExpiresAt.Before(exp) {
		exp = in.SessionExpiresAt.Truncate(time.Second)
	}
	if !exp.After(now) {
		return "", time.Time{}, ErrSessionExpired
	}
	lk, priv, err := i.kr.signingKey(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	var jti [16]byte
	if _, err := io.ReadFull(i.kr.rand, jti[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("session: token id: %w", err)
	}
	wc := wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: i.issuer, Subject: in.UserID, Audience: jwt.ClaimStrings(i.audience),
			ExpiresAt: jwt.NewNumericDate(exp), NotBefore: jwt.NewNumericDate(now),
			IssuedAt: jwt.NewNumericDate(now), ID: base64.RawURLEncoding.EncodeToString(jti[:]),
		},
		SessionID: in.SessionID, Email: in.Email, Role: in.Role, LoginMethod: in.LoginMethod, AMR: in.AMR,
		Groups: in.Teams, Scope: scopeFor(in.Role),
	}
	tok := jwt.NewWithClaims(i.method, wc)
	tok.Header["kid"] = lk.kid
	signed, err := tok.SignedString(priv)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("session: sign token: %w", err)
	}
	return signed, exp, nil
}

// Verify checks a token's signature (configured algorithm only, key looked
// up by kid), exp (required), nbf, iat, iss and aud. Failures wrap
// ErrExpiredToken (valid signature, past exp) or ErrInvalidToken. When the
// token names a key this replica does not know and the store could not be
// reached to look for it, the error also wraps the store's error (e.g.
// store.ErrUnavailable), so the caller can answer 503 instead of 401.
//
// Successful results are cached for min(CacheTTL, time to exp). The cache
// knows nothing of revocation: the caller must still check that the
// session (SessionID) is alive.
func (i *Issuer) Verify(ctx context.Context, token string) (Claims, error) {
	if !LooksLikeJWT(token) {
		return Claims{}, fmt.Errorf("%w: not a compact JWS", ErrInvalidToken)
	}
	var key [sha256.Size]byte
	if i.cache != nil {
		key = sha256.Sum256([]byte(token))
		if c, ok := i.cache.get(key, i.kr.now()); ok {
			return c.clone(), nil
		}
	}
	return i.verify(ctx, token, key)
}

// VerifyDigest is Verify for a caller that already holds sum, the SHA-256
// of token (the authenticator chain computes it once per request). A token
// verified moments ago costs one cache lookup: its shape, signature and
// claims were checked when it was first seen, and the digest identifies
// that very token. The slices of the claims returned are shared with the
// cache: the caller must not modify them.
func (i *Issuer) VerifyDigest(ctx context.Context, token string, sum [sha256.Size]byte) (Claims, error) {
	if i.cache != nil {
		if c, ok := i.cache.get(sum, i.kr.now()); ok {
			return c, nil
		}
	}
	if !LooksLikeJWT(token) {
		return Claims{}, fmt.Errorf("%w: not a compact JWS", ErrInvalidToken)
	}
	return i.verify(ctx, token, sum)
}

// verify parses and checks token and caches the result under key, the
// token's SHA-256 (unused when the cache is off).
func (i *Issuer) verify(ctx context.Context, token string, key [sha256.Size]byte) (Claims, error) {
	var wc wireClaims
	var used *liveKey
	_, err := i.parser.ParseWithClaims(token, &wc, i.keyFunc(ctx, &used))
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Claims{}, fmt.Errorf("%w: %w", ErrExpiredToken, err)
		}
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c := wc.claims()
	if i.cache != nil {
		now := i.kr.now()
		until := now.Add(i.cacheTTL)
		for _, t := range []time.Time{c.ExpiresAt, used.verifyUntil} {
			if t.Before(until) {
				until = t
			}
		}
		if now.Before(until) {
			i.cache.put(key, c, until, now)
		}
	}
	return c, nil
}

// keyFunc finds the verification key named by the token's kid and
// insists that the token's algorithm is the key's; the key used is
// reported through used.
func (i *Issuer) keyFunc(ctx context.Context, used **liveKey) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("missing kid")
		}
		lk, err := i.kr.verificationKey(ctx, kid)
		if err != nil {
			return nil, err
		}
		if t.Method.Alg() != lk.alg {
			return nil, errors.New("algorithm does not match the key")
		}
		*used = lk
		return lk.pub, nil
	}
}
