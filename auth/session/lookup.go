package session

import (
	"context"
	"crypto"
	"errors"
	"fmt"
)

// signingKey returns the current signer, reloading when the view is stale
// and creating a key when none can sign (self-healing if no rotation loop
// runs).
func (k *Keyring) signingKey(ctx context.Context) (*liveKey, crypto.Signer, error) {
	s := k.snap.Load()
	if s == nil || k.mono()-s.loaded > refreshEvery || s.signer == nil || !k.now().Before(s.signer.notAfter) {
		err := k.refreshForSigning(ctx)
		s = k.snap.Load()
		if err != nil && (s == nil || k.mono()-s.loaded > maxStale) {
			return nil, nil, fmt.Errorf("%w: %w", ErrNoSigningKey, err)
		}
	}
	if s.signer == nil || !k.now().Before(s.signer.notAfter) {
		if s.signerErr != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrNoSigningKey, s.signerErr)
		}
		return nil, nil, ErrNoSigningKey
	}
	return s.signer, s.signerKey, nil
}

func (k *Keyring) refreshForSigning(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.snap.Load()
	if s == nil || k.mono()-s.loaded > refreshEvery {
		if err := k.reloadLocked(ctx); err != nil {
			return err
		}
		s = k.snap.Load()
	}
	if s.signer != nil && k.now().Before(s.signer.notAfter) {
		return nil
	}
	_, err := k.ensureLocked(ctx)
	return err
}

// verificationKey finds kid among the keys that may verify now, reloading
// (rate-limited) when it is unknown: another replica may just have
// created it.
func (k *Keyring) verificationKey(ctx context.Context, kid string) (*liveKey, error) {
	if s := k.snap.Load(); s != nil {
		if lk := s.keys[kid]; lk != nil {
			return k.usable(lk)
		}
	}
	err := k.reloadLimited(ctx)
	if s := k.snap.Load(); s != nil {
		if lk := s.keys[kid]; lk != nil {
			return k.usable(lk)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("unknown kid, and the keys could not be reloaded: %w", err)
	}
	return nil, errors.New("unknown kid")
}

func (k *Keyring) usable(lk *liveKey) (*liveKey, error) {
	if lk.alg != k.alg {
		return nil, errors.New("key algorithm not accepted")
	}
	if !k.now().Before(lk.verifyUntil) {
		return nil, errors.New("key retired")
	}
	return lk, nil
}

// JWKS returns the public keys that may still verify a token (VerifyUntil
// in the future), newest first, as an RFC 7517 key set. It refreshes its
// view from the store at most once per ReloadEvery so that a key created
// by another replica is published by every replica. If the store is
// unreachable the last view is served.
func (k *Keyring) JWKS(ctx context.Context) JWKS {
	if s := k.snap.Load(); s == nil || k.mono()-s.loaded > k.reloadEvery {
		_ = k.reloadLimited(ctx) // unreachable store: serve the last view
	}
	out := JWKS{Keys: []JWK{}}
	s := k.snap.Load()
	if s == nil {
		return out
	}
	now := k.now()
	for _, lk := range s.ordered {
		if now.Before(lk.verifyUntil) {
			out.Keys = append(out.Keys, lk.jwk)
		}
	}
	return out
}
