package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/mfa"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// SecretSealer encrypts secrets at rest (auth/session.Sealer, keyed by
// KEYGATE_SECRET like the signing keys).
type SecretSealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// SecurityMailer tells a user about a change to how their account signs
// in (internal/mail).
type SecurityMailer interface {
	Enabled() bool
	SendSecurityNotice(ctx context.Context, to, what string, at time.Time) error
}

// MFAOptions configures second factors.
type MFAOptions struct {
	// Sealer encrypts TOTP secrets; nil (no KEYGATE_SECRET) disables
	// second factors, as it disables logins.
	Sealer SecretSealer
	// RP is the WebAuthn relying party; nil disables passkeys (the base
	// URL has no host name).
	RP *mfa.RP
	// RequiredRoles must have a second factor to sign in with a password
	// (KEYGATE_MFA_REQUIRED_ROLES).
	RequiredRoles []string
	// Issuer names Keygate in authenticator apps (default "Keygate").
	Issuer string
	// Mailer tells users of every change to their second factors; nil or
	// disabled sends nothing.
	Mailer SecurityMailer
	// ChallengeTTL bounds a pending second step and a passkey ceremony
	// (default 5 min); EnrollTTL a sign-in held back for setup (15 min).
	ChallengeTTL, EnrollTTL time.Duration
}

func (o *MFAOptions) defaults() {
	if o.Issuer == "" {
		o.Issuer = "Keygate"
	}
	if o.ChallengeTTL == 0 {
		o.ChallengeTTL = 5 * time.Minute
	}
	if o.EnrollTTL == 0 {
		o.EnrollTTL = 15 * time.Minute
	}
}

func totpAAD(userID string) []byte { return []byte("keygate/mfa/totp/v1\x00" + userID) }

func (s *Service) openTOTP(userID string, sealed []byte) (string, error) {
	pt, err := s.mfa.Sealer.Open(sealed, totpAAD(userID))
	if err != nil {
		return "", fmt.Errorf("service: open totp secret of user %s: %w", userID, err)
	}
	return string(pt), nil
}

// webauthnUser is u with its passkeys as the relying party reads them.
func (s *Service) webauthnUser(u store.User, keys []store.Passkey) (mfa.User, error) {
	wu := mfa.User{ID: u.ID, Name: u.Email, DisplayName: u.Alias}
	if wu.Name == "" {
		wu.Name = u.ID
	}
	for _, k := range keys {
		var c webauthn.Credential
		if err := json.Unmarshal(k.Credential, &c); err != nil {
			return mfa.User{}, fmt.Errorf("service: stored passkey of user %s does not decode: %w", u.ID, err)
		}
		wu.Credentials = append(wu.Credentials, c)
	}
	return wu, nil
}

// mailNotice mails the user about a change, after the answer (the change has
// committed), when mail is configured.
func (s *Service) mailNotice(ctx context.Context, u store.User, what string) {
	m := s.mfa.Mailer
	if m == nil || !m.Enabled() || u.Email == "" {
		return
	}
	at := s.Now()
	s.background(ctx, func(ctx context.Context) {
		if err := m.SendSecurityNotice(ctx, u.Email, what, at); err != nil {
			s.log.Error("security notice e-mail", "user_id", u.ID, "err", err)
		}
	})
}

// enrollee is whose second factor a call sets up: the signed-in user (a
// login session, never an API key: a key's holder has not proven the
// password), or, with the token of a sign-in held back by the policy, that
// user. ch is that sign-in, to finish once a factor is set up.
func (s *Service) enrollee(ctx context.Context, p auth.Principal, token string) (store.User, auth.Principal, *store.MFAChallenge, error) {
	if !s.mfaEnabled() {
		return store.User{}, auth.Principal{}, nil, errMFADisabled
	}
	if strings.TrimSpace(token) != "" {
		c, err := s.challenge(ctx, token, store.ChallengeEnroll)
		if err != nil {
			return store.User{}, auth.Principal{}, nil, err
		}
		u, err := s.store.GetUser(ctx, c.UserID)
		if err != nil || u.Disabled {
			return store.User{}, auth.Principal{}, nil, errMFAChallenge
		}
		return u, auth.Principal{UserID: u.ID, Email: u.Email, Role: rbac.Role(u.Role)}, &c, nil
	}
	u, err := s.sessionUser(ctx, p)
	return u, p, nil, err
}

// sessionUser is the user of a login session; API keys and the master
// key manage no second factors.
func (s *Service) sessionUser(ctx context.Context, p auth.Principal) (store.User, error) {
	if !s.mfaEnabled() {
		return store.User{}, errMFADisabled
	}
	if p.Method != auth.MethodSession || p.UserID == "" {
		return store.User{}, apperr.Forbidden("Two-factor authentication is managed from a signed-in session (the web UI or a session token), not with an API key.")
	}
	u, err := s.store.GetUser(ctx, p.UserID)
	if err != nil {
		return store.User{}, notFound(err, "User not found.")
	}
	return u, nil
}

// ---- status ----

// PasskeyInfo describes a passkey without its key material.
type PasskeyInfo struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// MFAStatus is a user's second factors.
type MFAStatus struct {
	UserID  string `json:"user_id"`
	Enabled bool   `json:"enabled"`
	// Required: the user's role must have a second factor.
	Required          bool          `json:"required"`
	TOTP              bool          `json:"totp"`
	Passkeys          []PasskeyInfo `json:"passkeys"`
	RecoveryCodesLeft int           `json:"recovery_codes_left"`
	// PasskeysAvailable: this server can register passkeys.
	PasskeysAvailable bool `json:"passkeys_available"`
}

// MyMFA is the signed-in user's second factors.
func (s *Service) MyMFA(ctx context.Context, p auth.Principal) (MFAStatus, error) {
	u, err := s.sessionUser(ctx, p)
	if err != nil {
		return MFAStatus{}, err
	}
	return s.mfaStatus(ctx, u)
}

func (s *Service) mfaStatus(ctx context.Context, u store.User) (MFAStatus, error) {
	st := MFAStatus{UserID: u.ID, Required: s.mfaRequiredFor(u.Role), Passkeys: []PasskeyInfo{}, PasskeysAvailable: s.mfa.RP != nil}
	t, err := s.store.GetTOTP(ctx, u.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return MFAStatus{}, fmt.Errorf("service: get totp: %w", err)
	}
	st.TOTP = err == nil && t.ConfirmedAt != nil
	keys, err := s.store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return MFAStatus{}, fmt.Errorf("service: list passkeys: %w", err)
	}
	for _, k := range keys {
		st.Passkeys = append(st.Passkeys, PasskeyInfo{ID: k.ID, Name: k.Name, CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt})
	}
	st.Enabled = st.TOTP || len(keys) > 0
	if st.Enabled {
		if st.RecoveryCodesLeft, err = s.store.CountRecoveryCodes(ctx, u.ID); err != nil {
			return MFAStatus{}, fmt.Errorf("service: count recovery codes: %w", err)
		}
	}
	return st, nil
}

// MFASummaries says which users have a second factor (admins and admin
// viewers: the users page).
func (s *Service) MFASummaries(ctx context.Context, p auth.Principal, userIDs []string) (map[string]store.MFASummary, error) {
	if err := require(p, rbac.PermReadAll); err != nil {
		return nil, err
	}
	if len(userIDs) > 1000 {
		return nil, apperr.Invalid("Too many users at once.")
	}
	out, err := s.store.MFASummaries(ctx, userIDs)
	if err != nil {
		return nil, fmt.Errorf("service: mfa summaries: %w", err)
	}
	return out, nil
}

// ---- TOTP ----

// TOTPSetup is a new TOTP secret to put into an authenticator app.
type TOTPSetup struct {
	Secret      string `json:"secret"`
	OTPAuthURI  string `json:"otpauth_uri"`
	QRPNGBase64 string `json:"qr_png_base64"`
}

// SetupTOTP makes a new TOTP secret for the signed-in user (or the user
// of an enrollment token), replacing an unconfirmed one. It is not a
// factor until ConfirmTOTP.
func (s *Service) SetupTOTP(ctx context.Context, p auth.Principal, token string) (TOTPSetup, error) {
	u, _, _, err := s.enrollee(ctx, p, token)
	if err != nil {
		return TOTPSetup{}, err
	}
	if err := ssoOnly(u); err != nil {
		return TOTPSetup{}, err
	}
	account := u.Email
	if account == "" {
		account = u.ID
	}
	setup, err := mfa.NewTOTP(s.mfa.Issuer, account, readerFunc(s.rand))
	if err != nil {
		return TOTPSetup{}, err
	}
	sealed, err := s.mfa.Sealer.Seal([]byte(setup.Secret), totpAAD(u.ID))
	if err != nil {
		return TOTPSetup{}, fmt.Errorf("service: seal totp secret: %w", err)
	}
	err = s.store.PutTOTP(ctx, &store.TOTP{UserID: u.ID, SecretSealed: sealed, CreatedAt: s.Now()})
	if errors.Is(err, store.ErrConflict) {
		return TOTPSetup{}, apperr.Conflict("An authenticator app is already set up; remove it first to set up another.")
	}
	if err != nil {
		return TOTPSetup{}, fmt.Errorf("service: put totp: %w", err)
	}
	return TOTPSetup{Secret: setup.Secret, OTPAuthURI: setup.URI, QRPNGBase64: setup.QRPNGBase64()}, nil
}

// ssoOnly refuses second factors for accounts that sign in only through
// SSO: their identity provider decides how they authenticate.
func ssoOnly(u store.User) error {
	if u.PasswordHash == "" && u.SSOSubject != "" {
		return apperr.Invalid("Your account signs in through single sign-on; your identity provider handles second factors.")
	}
	return nil
}

// MFAEnabled is the answer to turning a second factor on: the recovery
// codes, shown once (nil when the user had some already and keeps them),
// and, when the setup finished a sign-in held back by the policy, its
// session.
type MFAEnabled struct {
	RecoveryCodes []string
	Passkey       *PasskeyInfo
	Login         *LoginResult
}

// ConfirmTOTP turns the pending TOTP secret on when code matches it, and
// makes a new set of recovery codes (the old ones stop working). From a
// signed-in session the user proves it is them first (proveOwner): a
// session token alone must not turn on a factor its holder controls —
// that locks the owner out and, with a passkey added under it, signs in
// without the password.
func (s *Service) ConfirmTOTP(ctx context.Context, p auth.Principal, token, code string, proof OwnerProof) (MFAEnabled, error) {
	u, actor, ch, err := s.enrollee(ctx, p, token)
	if err != nil {
		return MFAEnabled{}, err
	}
	if ch == nil {
		if err := s.proveOwner(ctx, p, u, proof); err != nil {
			return MFAEnabled{}, err
		}
	}
	t, err := s.store.GetTOTP(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return MFAEnabled{}, apperr.Invalid("Set up an authenticator app first (POST /user/mfa/totp/setup).")
	}
	if err != nil {
		return MFAEnabled{}, fmt.Errorf("service: get totp: %w", err)
	}
	if t.ConfirmedAt != nil {
		return MFAEnabled{}, apperr.Conflict("The authenticator app is already turned on.")
	}
	secret, err := s.openTOTP(u.ID, t.SecretSealed)
	if err != nil {
		return MFAEnabled{}, err
	}
	step, ok := mfa.CheckTOTP(secret, code, s.Now())
	if !ok {
		return MFAEnabled{}, apperr.InvalidParam("code", "That code does not match; check the app's clock and try the current code.")
	}
	codes, hashes, err := s.newRecoveryCodes(u.ID)
	if err != nil {
		return MFAEnabled{}, err
	}
	err = s.store.Tx(ctx, func(tx store.Store) error {
		if err := tx.ConfirmTOTP(ctx, u.ID, step, s.Now()); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("The authenticator app is already turned on.")
			}
			return fmt.Errorf("service: confirm totp: %w", err)
		}
		if err := tx.ReplaceRecoveryCodes(ctx, u.ID, hashes, s.Now()); err != nil {
			return fmt.Errorf("service: recovery codes: %w", err)
		}
		return s.audit(ctx, tx, actor, "mfa.totp_enabled", "user", u.ID, nil, map[string]any{"recovery_codes": len(hashes)})
	})
	if err != nil {
		return MFAEnabled{}, err
	}
	s.mailNotice(ctx, u, "Two-factor authentication with an authenticator app was turned on for your account, and new recovery codes were made.")
	out := MFAEnabled{RecoveryCodes: codes}
	if ch != nil {
		res, err := s.finishEnrollment(ctx, u, *ch, AMROTP)
		if err != nil {
			return MFAEnabled{}, err
		}
		out.Login = &res
	}
	return out, nil
}

func (s *Service) newRecoveryCodes(userID string) ([]string, []string, error) {
	codes, err := mfa.NewRecoveryCodes(readerFunc(s.rand))
	if err != nil {
		return nil, nil, err
	}
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i] = mfa.HashRecoveryCode(userID, c)
	}
	return codes, hashes, nil
}

// finishEnrollment spends the sign-in held back by the policy and starts
// its session, now with the new factor.
func (s *Service) finishEnrollment(ctx context.Context, u store.User, ch store.MFAChallenge, method string) (LoginResult, error) {
	if err := s.consume(ctx, ch); err != nil {
		return LoginResult{}, err
	}
	return s.startSession(ctx, u, "password", amrOf(ch.AMR, method), "", "")
}

// ---- passkeys ----

// OwnerProof is how a signed-in user proves it is them turning a second
// factor on (a passkey, an authenticator app): a current second factor
// (MFAProof) when they have one, else their password.
type OwnerProof struct {
	MFAProof
	Password string `json:"password"`
}

// BeginPasskeyRegistration starts registering a passkey for the signed-in
// user (or the user of an enrollment token, which then carries the
// ceremony). A passkey signs in on its own, so a signed-in user proves
// the change first: a session token alone (it is also handed to API
// clients and verifiers, and may leak) must not become a permanent,
// password-free way in.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, p auth.Principal, token string, proof OwnerProof) (WebAuthnBegin, error) {
	u, _, ch, err := s.enrollee(ctx, p, token)
	if err != nil {
		return WebAuthnBegin{}, err
	}
	if s.mfa.RP == nil {
		return WebAuthnBegin{}, errPasskeysOff
	}
	if err := ssoOnly(u); err != nil {
		return WebAuthnBegin{}, err
	}
	if ch == nil {
		if err := s.proveOwner(ctx, p, u, proof); err != nil {
			return WebAuthnBegin{}, err
		}
	}
	keys, err := s.store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return WebAuthnBegin{}, fmt.Errorf("service: list passkeys: %w", err)
	}
	if len(keys) >= maxPasskeys {
		return WebAuthnBegin{}, apperr.Invalid("You have %d passkeys, the most one account may have; remove one first.", maxPasskeys)
	}
	wu, err := s.webauthnUser(u, keys)
	if err != nil {
		return WebAuthnBegin{}, err
	}
	cer, err := s.mfa.RP.BeginRegistration(wu)
	if err != nil {
		return WebAuthnBegin{}, err
	}
	if ch != nil {
		if err := s.store.SetMFAChallengeData(ctx, ch.IDHash, cer.State); err != nil {
			return WebAuthnBegin{}, errMFAChallenge
		}
		return WebAuthnBegin{Token: strings.TrimSpace(token), ExpiresAt: ch.ExpiresAt, Options: cer.Options}, nil
	}
	tok, c, err := s.newChallenge(ctx, u.ID, store.ChallengeRegister, nil, cer.State)
	if err != nil {
		return WebAuthnBegin{}, err
	}
	return WebAuthnBegin{Token: tok, ExpiresAt: c.ExpiresAt, Options: cer.Options}, nil
}

const (
	maxPasskeys       = 20
	maxPasskeyNameLen = 64
)

// PasskeyRegistration is the browser's answer to a registration.
type PasskeyRegistration struct {
	Token      string          `json:"mfa_token"`
	Name       string          `json:"name"`
	Credential json.RawMessage `json:"credential"`
}

// FinishPasskeyRegistration verifies the browser's answer and stores the
// passkey. The first factor of an account comes with recovery codes.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, p auth.Principal, in PasskeyRegistration) (MFAEnabled, error) {
	if s.mfa.RP == nil {
		return MFAEnabled{}, errPasskeysOff
	}
	name := strings.TrimSpace(in.Name)
	if name == "" {
		name = "Passkey"
	}
	if utf8.RuneCountInString(name) > maxPasskeyNameLen || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return MFAEnabled{}, apperr.InvalidParam("name", "name must be at most %d printable characters.", maxPasskeyNameLen)
	}
	if len(in.Credential) == 0 {
		return MFAEnabled{}, apperr.InvalidParam("credential", "credential (the browser's PublicKeyCredential) is required.")
	}
	var (
		u     store.User
		actor = p
		enrol *store.MFAChallenge
		state string
	)
	c, err := s.challenge(ctx, in.Token, store.ChallengeRegister, store.ChallengeEnroll)
	if err != nil {
		return MFAEnabled{}, err
	}
	if c.Purpose == store.ChallengeEnroll {
		if u, actor, enrol, err = s.enrollee(ctx, p, in.Token); err != nil {
			return MFAEnabled{}, err
		}
	} else {
		if u, err = s.sessionUser(ctx, p); err != nil {
			return MFAEnabled{}, err
		}
		if c.UserID != u.ID {
			return MFAEnabled{}, errMFAChallenge
		}
		if err := s.consume(ctx, c); err != nil {
			return MFAEnabled{}, err
		}
	}
	state = c.Data
	keys, err := s.store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return MFAEnabled{}, fmt.Errorf("service: list passkeys: %w", err)
	}
	wu, err := s.webauthnUser(u, keys)
	if err != nil {
		return MFAEnabled{}, err
	}
	cred, err := s.mfa.RP.FinishRegistration(wu, state, in.Credential)
	if errors.Is(err, mfa.ErrAssertion) {
		s.log.DebugContext(ctx, "passkey registration refused", "user_id", u.ID, "err", err)
		return MFAEnabled{}, apperr.InvalidParam("credential", "The passkey could not be verified; try again.")
	}
	if err != nil {
		return MFAEnabled{}, err
	}
	record, err := json.Marshal(cred)
	if err != nil {
		return MFAEnabled{}, fmt.Errorf("service: encode passkey: %w", err)
	}
	before, err := s.store.MFASummaries(ctx, []string{u.ID})
	if err != nil {
		return MFAEnabled{}, fmt.Errorf("service: mfa summary: %w", err)
	}
	var out MFAEnabled
	var hashes []string
	if !before[u.ID].Enabled() {
		if out.RecoveryCodes, hashes, err = s.newRecoveryCodes(u.ID); err != nil {
			return MFAEnabled{}, err
		}
	}
	pk := store.Passkey{ID: mfa.CredentialID(cred.ID), UserID: u.ID, Name: name, Credential: record, CreatedAt: s.Now()}
	err = s.store.Tx(ctx, func(tx store.Store) error {
		if err := tx.CreatePasskey(ctx, &pk); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("This passkey is registered already.")
			}
			return fmt.Errorf("service: create passkey: %w", err)
		}
		if hashes != nil {
			if err := tx.ReplaceRecoveryCodes(ctx, u.ID, hashes, s.Now()); err != nil {
				return fmt.Errorf("service: recovery codes: %w", err)
			}
		}
		return s.audit(ctx, tx, actor, "mfa.passkey_added", "user", u.ID, nil, map[string]any{"name": name, "method": mfa.Method(*cred)})
	})
	if err != nil {
		return MFAEnabled{}, err
	}
	s.mailNotice(ctx, u, fmt.Sprintf("A passkey named %q was added to your account.", name))
	out.Passkey = &PasskeyInfo{ID: pk.ID, Name: pk.Name, CreatedAt: pk.CreatedAt}
	if enrol != nil {
		res, err := s.finishEnrollment(ctx, u, *enrol, mfa.Method(*cred))
		if err != nil {
			return MFAEnabled{}, err
		}
		out.Login = &res
	}
	return out, nil
}

// ---- changes that need a current factor ----

// MFAProof is a current second factor, required to turn one off or to
// make new recovery codes: a TOTP or recovery code, or a passkey
// assertion answering BeginMFAStepUp (its token and the assertion).
type MFAProof struct {
	Code     string          `json:"code"`
	Token    string          `json:"mfa_token"`
	WebAuthn json.RawMessage `json:"webauthn"`
}

// beginAssertion starts a passkey assertion over u's passkeys; none is
// the answer when u has none.
func (s *Service) beginAssertion(ctx context.Context, u store.User, none string) (mfa.Ceremony, error) {
	keys, err := s.store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return mfa.Ceremony{}, fmt.Errorf("service: list passkeys: %w", err)
	}
	if len(keys) == 0 {
		return mfa.Ceremony{}, apperr.Invalid("%s", none)
	}
	wu, err := s.webauthnUser(u, keys)
	if err != nil {
		return mfa.Ceremony{}, err
	}
	return s.mfa.RP.BeginLogin(wu)
}

// BeginMFAStepUp starts a passkey assertion that proves a current factor
// for a change (MFAProof).
func (s *Service) BeginMFAStepUp(ctx context.Context, p auth.Principal) (WebAuthnBegin, error) {
	u, err := s.sessionUser(ctx, p)
	if err != nil {
		return WebAuthnBegin{}, err
	}
	if s.mfa.RP == nil {
		return WebAuthnBegin{}, errPasskeysOff
	}
	cer, err := s.beginAssertion(ctx, u, "You have no passkey; prove the change with a code instead.")
	if err != nil {
		return WebAuthnBegin{}, err
	}
	tok, c, err := s.newChallenge(ctx, u.ID, store.ChallengeStepUp, nil, cer.State)
	if err != nil {
		return WebAuthnBegin{}, err
	}
	return WebAuthnBegin{Token: tok, ExpiresAt: c.ExpiresAt, Options: cer.Options}, nil
}

// proveFactor checks a current factor of u, counted against the same
// attempt window as sign-ins: a stolen session is no code oracle.
func (s *Service) proveFactor(ctx context.Context, u store.User, proof MFAProof) error {
	switch {
	case proof.Code != "" && len(proof.WebAuthn) == 0:
		_, err := s.checkCodeAt(ctx, u, proof.Code, metaOf(ctx).ClientIP)
		if errors.Is(err, errBadCode) {
			return apperr.InvalidParam("code", "The code is wrong.")
		}
		return err
	case len(proof.WebAuthn) > 0 && proof.Code == "":
		c, err := s.challenge(ctx, proof.Token, store.ChallengeStepUp)
		if err != nil || c.UserID != u.ID {
			return errMFAChallenge
		}
		if _, err := s.checkPasskey(ctx, u, c, proof.WebAuthn, metaOf(ctx).ClientIP); err != nil {
			if errors.Is(err, errBadCode) {
				return apperr.InvalidParam("webauthn", "The passkey could not be verified.")
			}
			return err
		}
		return s.consume(ctx, c)
	}
	return apperr.InvalidParam("code", "Prove this change with a current code (code) or a passkey (mfa_token and webauthn).")
}

// proveOwner checks that the signed-in user is at the keyboard: a current
// second factor when they have one, else their password.
func (s *Service) proveOwner(ctx context.Context, p auth.Principal, u store.User, proof OwnerProof) error {
	sums, err := s.store.MFASummaries(ctx, []string{u.ID})
	if err != nil {
		return fmt.Errorf("service: mfa summary: %w", err)
	}
	if sums[u.ID].Enabled() {
		return s.proveFactor(ctx, u, proof.MFAProof)
	}
	if proof.Password == "" {
		return apperr.InvalidParam("password", "Confirm turning on a second factor with your current password.")
	}
	return s.checkCurrentPassword(ctx, p, u, proof.Password, "password")
}

// removalAllowed refuses to remove a user's last factor when their role
// requires one.
func (s *Service) removalAllowed(ctx context.Context, u store.User, after func(store.MFASummary) store.MFASummary) error {
	sums, err := s.store.MFASummaries(ctx, []string{u.ID})
	if err != nil {
		return fmt.Errorf("service: mfa summary: %w", err)
	}
	if s.mfaRequiredFor(u.Role) && !after(sums[u.ID]).Enabled() {
		return apperr.Forbidden("Your role requires two-factor authentication: add another factor before removing this one.")
	}
	return nil
}

// DisableTOTP turns the authenticator app off, given a current factor.
func (s *Service) DisableTOTP(ctx context.Context, p auth.Principal, proof MFAProof) error {
	u, err := s.sessionUser(ctx, p)
	if err != nil {
		return err
	}
	t, err := s.store.GetTOTP(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.ConfirmedAt == nil) {
		return apperr.NotFound("No authenticator app is turned on.")
	}
	if err != nil {
		return fmt.Errorf("service: get totp: %w", err)
	}
	if err := s.removalAllowed(ctx, u, func(m store.MFASummary) store.MFASummary { m.TOTP = false; return m }); err != nil {
		return err
	}
	if err := s.proveFactor(ctx, u, proof); err != nil {
		return err
	}
	err = s.store.Tx(ctx, func(tx store.Store) error {
		if err := tx.DeleteTOTP(ctx, u.ID); err != nil {
			return notFound(err, "No authenticator app is turned on.")
		}
		if err := s.dropCodesIfNoFactor(ctx, tx, u.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, p, "mfa.totp_disabled", "user", u.ID, nil, nil)
	})
	if err != nil {
		return err
	}
	s.mailNotice(ctx, u, "Two-factor authentication with an authenticator app was turned off for your account.")
	return nil
}

// dropCodesIfNoFactor removes the recovery codes of a user left without
// factors: they would recover nothing.
func (s *Service) dropCodesIfNoFactor(ctx context.Context, tx store.Store, userID string) error {
	sums, err := tx.MFASummaries(ctx, []string{userID})
	if err != nil {
		return fmt.Errorf("service: mfa summary: %w", err)
	}
	if sums[userID].Enabled() {
		return nil
	}
	if err := tx.ReplaceRecoveryCodes(ctx, userID, nil, s.Now()); err != nil {
		return fmt.Errorf("service: drop recovery codes: %w", err)
	}
	return nil
}

// DeletePasskey removes one of the signed-in user's passkeys, given a
// current factor.
func (s *Service) DeletePasskey(ctx context.Context, p auth.Principal, id string, proof MFAProof) error {
	u, err := s.sessionUser(ctx, p)
	if err != nil {
		return err
	}
	pk, err := s.store.GetPasskey(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && pk.UserID != u.ID) {
		return apperr.NotFound("Passkey not found.")
	}
	if err != nil {
		return fmt.Errorf("service: get passkey: %w", err)
	}
	if err := s.removalAllowed(ctx, u, func(m store.MFASummary) store.MFASummary { m.Passkeys--; return m }); err != nil {
		return err
	}
	if err := s.proveFactor(ctx, u, proof); err != nil {
		return err
	}
	err = s.store.Tx(ctx, func(tx store.Store) error {
		if err := tx.DeletePasskey(ctx, u.ID, pk.ID); err != nil {
			return notFound(err, "Passkey not found.")
		}
		if err := s.dropCodesIfNoFactor(ctx, tx, u.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, p, "mfa.passkey_removed", "user", u.ID, nil, map[string]any{"name": pk.Name})
	})
	if err != nil {
		return err
	}
	s.mailNotice(ctx, u, fmt.Sprintf("The passkey named %q was removed from your account.", pk.Name))
	return nil
}

// RegenerateRecoveryCodes replaces the user's recovery codes, given a
// current factor.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, p auth.Principal, proof MFAProof) ([]string, error) {
	u, err := s.sessionUser(ctx, p)
	if err != nil {
		return nil, err
	}
	sums, err := s.store.MFASummaries(ctx, []string{u.ID})
	if err != nil {
		return nil, fmt.Errorf("service: mfa summary: %w", err)
	}
	if !sums[u.ID].Enabled() {
		return nil, apperr.Invalid("Turn on two-factor authentication first.")
	}
	if err := s.proveFactor(ctx, u, proof); err != nil {
		return nil, err
	}
	codes, hashes, err := s.newRecoveryCodes(u.ID)
	if err != nil {
		return nil, err
	}
	err = s.store.Tx(ctx, func(tx store.Store) error {
		if err := tx.ReplaceRecoveryCodes(ctx, u.ID, hashes, s.Now()); err != nil {
			return fmt.Errorf("service: recovery codes: %w", err)
		}
		return s.audit(ctx, tx, p, "mfa.recovery_codes_regenerated", "user", u.ID, nil, nil)
	})
	if err != nil {
		return nil, err
	}
	s.mailNotice(ctx, u, "New recovery codes were made for your account; the old ones no longer work.")
	return codes, nil
}

// ResetMFA removes every second factor of a user and ends their sessions
// (admins: a user who lost their phone and their codes). The user signs
// in with their password next and, if their role requires it, sets a
// factor up again.
func (s *Service) ResetMFA(ctx context.Context, p auth.Principal, userID string) error {
	if err := require(p, rbac.PermUserWrite); err != nil {
		return err
	}
	if err := validID("user_id", userID); err != nil {
		return err
	}
	if p.UserID == userID {
		return apperr.InvalidParam("user_id", "Reset another user's second factors; turn your own off on your account page, with a current code.")
	}
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return notFound(err, "User %q not found.", truncate(userID, 80))
	}
	before, err := s.store.MFASummaries(ctx, []string{u.ID})
	if err != nil {
		return fmt.Errorf("service: mfa summary: %w", err)
	}
	err = s.tx(ctx, func(tx store.Store, ch *Changes) error {
		if err := tx.DeleteMFA(ctx, u.ID); err != nil {
			return fmt.Errorf("service: delete mfa: %w", err)
		}
		ids, err := tx.RevokeUserSessions(ctx, u.ID, s.Now())
		if err != nil {
			return fmt.Errorf("service: revoke sessions: %w", err)
		}
		ch.Session(ids...)
		ch.User(u.ID)
		b := before[u.ID]
		return s.audit(ctx, tx, p, "mfa.reset", "user", u.ID, map[string]any{"totp": b.TOTP, "passkeys": b.Passkeys},
			map[string]any{"sessions_revoked": len(ids)})
	})
	if err != nil {
		return err
	}
	s.mailNotice(ctx, u, "An administrator removed every second factor of your account and signed you out everywhere. "+
		"Set two-factor authentication up again after you sign in.")
	return nil
}

// readerFunc adapts the service's randomness to io.Reader.
type readerFunc func(b []byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }
