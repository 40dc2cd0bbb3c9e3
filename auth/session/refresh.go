package session

import (
	"context"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// VerifyExpired accepts a token whose only fault is that it has expired:
// signature, algorithm, kid, issuer, audience and required claims must all
// be valid. The cookie flow uses it to re-issue a short-lived token while
// the server-side session (checked by the caller) is still alive, so a
// user idle past the token lifetime is not logged out.
func (i *Issuer) VerifyExpired(ctx context.Context, token string) (Claims, error) {
	if !LooksLikeJWT(token) {
		return Claims{}, fmt.Errorf("%w: not a compact JWS", ErrInvalidToken)
	}
	var wc wireClaims
	var used *liveKey
	_, err := i.parser.ParseWithClaims(token, &wc, i.keyFunc(ctx, &used))
	signed := used != nil
	if err == nil {
		return wc.claims(), nil
	}
	for _, other := range []error{jwt.ErrTokenMalformed, jwt.ErrTokenUnverifiable, jwt.ErrTokenSignatureInvalid,
		jwt.ErrTokenInvalidAudience, jwt.ErrTokenInvalidIssuer, jwt.ErrTokenNotValidYet, jwt.ErrTokenUsedBeforeIssued,
		jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenInvalidId, jwt.ErrTokenInvalidSubject} {
		if errors.Is(err, other) {
			return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
		}
	}
	if !signed || !errors.Is(err, jwt.ErrTokenExpired) {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	// The validator joins every failed check; our own claim rules are
	// re-run here so "expired and missing sid" is still invalid.
	if verr := wc.Validate(); verr != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, verr)
	}
	return wc.claims(), nil
}
