package store

import (
	"context"
	"time"
)

// ---- second factors ----

// TOTP is a user's authenticator-app factor (RFC 6238). One per user.
type TOTP struct {
	UserID string
	// SecretSealed is the shared secret, encrypted by the caller (with
	// KEYGATE_SECRET) before it reaches the store.
	SecretSealed []byte
	// ConfirmedAt is nil until the user proved with a code that their app
	// holds the secret; an unconfirmed secret is not a factor.
	ConfirmedAt *time.Time
	// LastStep is the highest RFC 6238 time step whose code was accepted;
	// a code of that step or an older one is refused (replay).
	LastStep  int64
	CreatedAt time.Time
}

// Passkey is a WebAuthn credential registered by a user.
type Passkey struct {
	// ID is the credential id, base64url without padding; unique.
	ID     string
	UserID string
	// Name is the user's label ("YubiKey 5", "MacBook").
	Name string
	// Credential is the relying party's record of the credential (public
	// key, signature counter, flags) as JSON; it holds no secret.
	Credential []byte
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// MFASummary says which second factors a user has.
type MFASummary struct {
	TOTP     bool // a confirmed TOTP
	Passkeys int
}

// Enabled reports whether the user has any second factor.
func (s MFASummary) Enabled() bool { return s.TOTP || s.Passkeys > 0 }

// MFA challenge purposes.
const (
	// ChallengeLogin: a sign-in whose password was right and which waits
	// for the second factor.
	ChallengeLogin = "login"
	// ChallengeEnroll: a sign-in held back until the user sets up a second
	// factor (KEYGATE_MFA_REQUIRED_ROLES).
	ChallengeEnroll = "enroll"
	// ChallengePasskeyLogin: a passwordless sign-in with a passkey; the
	// user is known only once the assertion names its credential.
	ChallengePasskeyLogin = "passkey_login"
	// ChallengeRegister: a signed-in user registering a passkey.
	ChallengeRegister = "passkey_register"
	// ChallengeStepUp: a signed-in user proving a passkey before a change
	// that needs a current factor (disabling one, new recovery codes).
	ChallengeStepUp = "step_up"
)

// MFAChallenge is a pending step of a sign-in or of a passkey ceremony,
// named by a random token of which only the SHA-256 hex is stored.
type MFAChallenge struct {
	IDHash string
	// UserID is "" for a passwordless sign-in until its assertion is
	// verified.
	UserID  string
	Purpose string
	// AMR lists the methods already proven (RFC 8176: "pwd").
	AMR []string
	// Data is the WebAuthn ceremony state (JSON) set when a ceremony
	// begins; "" otherwise.
	Data       string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	ConsumedAt *time.Time
}

// MFA stores second factors, recovery codes and pending challenges.
type MFA interface {
	// GetTOTP returns the user's TOTP, confirmed or not; ErrNotFound if none.
	GetTOTP(ctx context.Context, userID string) (TOTP, error)
	// PutTOTP inserts t, replacing an unconfirmed TOTP of the same user;
	// ErrConflict when the user has a confirmed one.
	PutTOTP(ctx context.Context, t *TOTP) error
	// ConfirmTOTP marks the user's unconfirmed TOTP confirmed at at with
	// step as its last used step; ErrConflict when it is confirmed already,
	// ErrNotFound when there is none.
	ConfirmTOTP(ctx context.Context, userID string, step int64, at time.Time) error
	// UseTOTPStep records step as used if it is after the last used step,
	// in one conditional update: of any number of concurrent calls with the
	// same step exactly one gets true (a code is accepted at most once).
	// False when step is not newer; ErrNotFound when the user has no
	// confirmed TOTP.
	UseTOTPStep(ctx context.Context, userID string, step int64) (bool, error)
	// DeleteTOTP removes the user's TOTP; ErrNotFound if none.
	DeleteTOTP(ctx context.Context, userID string) error

	// CreatePasskey inserts p; ErrConflict when the credential id exists.
	CreatePasskey(ctx context.Context, p *Passkey) error
	// GetPasskey returns a passkey by credential id.
	GetPasskey(ctx context.Context, id string) (Passkey, error)
	// ListPasskeys returns the user's passkeys, oldest first.
	ListPasskeys(ctx context.Context, userID string) ([]Passkey, error)
	// UpdatePasskey reads the passkey, lets fn change it and writes it
	// back atomically (the ID and UserID cannot change).
	UpdatePasskey(ctx context.Context, id string, fn func(*Passkey) error) (Passkey, error)
	// DeletePasskey removes the user's passkey id; ErrNotFound unless the
	// user has it.
	DeletePasskey(ctx context.Context, userID, id string) error

	// ReplaceRecoveryCodes makes hashes the user's only recovery codes.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string, at time.Time) error
	// UseRecoveryCode marks the user's unused code hash used, in one
	// conditional update: of concurrent calls exactly one gets true. False
	// for an unknown or used code.
	UseRecoveryCode(ctx context.Context, userID, hash string, at time.Time) (bool, error)
	// CountRecoveryCodes counts the user's unused codes.
	CountRecoveryCodes(ctx context.Context, userID string) (int, error)

	// MFASummaries says which factors each of the users has; users
	// without any are absent.
	MFASummaries(ctx context.Context, userIDs []string) (map[string]MFASummary, error)
	// DeleteMFA removes every factor, recovery code and challenge of the
	// user (an administrator's reset).
	DeleteMFA(ctx context.Context, userID string) error

	// CreateMFAChallenge inserts c and forgets challenges that expired
	// before c.CreatedAt.
	CreateMFAChallenge(ctx context.Context, c *MFAChallenge) error
	// GetMFAChallenge returns a challenge, consumed or not.
	GetMFAChallenge(ctx context.Context, idHash string) (MFAChallenge, error)
	// SetMFAChallengeData stores the ceremony state of an unconsumed
	// challenge; ErrConflict when it is consumed, ErrNotFound if absent.
	SetMFAChallengeData(ctx context.Context, idHash, data string) error
	// ConsumeMFAChallenge marks the challenge consumed with one conditional
	// update that succeeds only while it is unconsumed and now < ExpiresAt.
	// Of any number of concurrent calls exactly one succeeds; the others
	// get ErrConflict (used or expired) or ErrNotFound (unknown).
	ConsumeMFAChallenge(ctx context.Context, idHash string, now time.Time) (MFAChallenge, error)
}
