package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/mfa"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// Second factors at sign-in. A right password for a user with a second
// factor starts no session: it answers MFARequiredError with a
// short-lived token naming a pending challenge, which one right code or
// passkey assertion spends (once) to start the session. A user whose role
// must have a second factor (MFAOptions.RequiredRoles) and has none gets
// a token that can only set one up (mfa.go); finishing the setup starts
// the session. Until then there is no session at all, so nothing on any
// access path — the management API, /auth/verify, the pages — can be
// reached with a half-finished sign-in.
//
// Codes are guessed against the same per-account window as passwords
// (attempts.go): each code, recovery code or assertion takes an attempt
// before it is checked, and for these users a right password no longer
// clears the window — only a finished sign-in does — so alternating the
// password and code guesses gains nothing.

// RFC 8176 authentication method references carried in a session's amr.
const (
	AMRPassword = "pwd"
	AMROTP      = "otp"
	AMRHardware = "hwk"
	AMRSoftware = "swk"
	AMRMFA      = "mfa"
)

// Methods a pending sign-in may be finished with.
const (
	MFAMethodTOTP         = "totp"
	MFAMethodWebAuthn     = "webauthn"
	MFAMethodRecoveryCode = "recovery_code"
)

// MFARequiredError is the answer to a right password when a second step
// is needed: the faces show the second step (or the setup) and send the
// token back with it.
type MFARequiredError struct {
	// Token names the pending sign-in; only its hash is stored.
	Token     string
	ExpiresAt time.Time
	// Setup: the user's role requires a second factor and the user has
	// none; the token can only set one up.
	Setup bool
	// Methods the user can finish with (Setup: can set up).
	Methods []string
}

func (e *MFARequiredError) Error() string {
	if e.Setup {
		return "service: second factor must be set up"
	}
	return "service: second factor required"
}

// Unwrap gives faces that do not know this error a plain 401.
func (e *MFARequiredError) Unwrap() error {
	if e.Setup {
		return apperr.Unauthenticated("Your role requires two-factor authentication: set it up to finish signing in.")
	}
	return apperr.Unauthenticated("A second factor is required: send a code from your authenticator app, a recovery code or a passkey.")
}

// AsMFARequired finds an MFARequiredError in err's chain.
func AsMFARequired(err error) (*MFARequiredError, bool) {
	var e *MFARequiredError
	ok := errors.As(err, &e)
	return e, ok
}

var (
	errMFAChallenge = apperr.Unauthenticated("This sign-in step has expired or was already used; sign in again.")
	errBadCode      = apperr.Unauthenticated("Invalid code.")
	errMFADisabled  = apperr.Disabled("Two-factor authentication is not available: set KEYGATE_SECRET (or LITELLM_SALT_KEY).")
)

func (s *Service) mfaEnabled() bool { return s.mfa.Sealer != nil }

// mfaRequiredFor reports whether role must have a second factor.
func (s *Service) mfaRequiredFor(role string) bool { return slices.Contains(s.mfa.RequiredRoles, role) }

// passwordVerified finishes a sign-in whose password was right (login,
// invitation, reset): a session, a second step, or the setup the policy
// demands. account is the attempt window to clear once the sign-in is
// complete; otp, when given, is checked at once (one-call login).
func (s *Service) passwordVerified(ctx context.Context, u store.User, account, otp, ip string, w *store.AttemptWindow) (LoginResult, error) {
	if !s.mfaEnabled() {
		return s.passwordSession(ctx, u, account)
	}
	sums, err := s.store.MFASummaries(ctx, []string{u.ID})
	if err != nil {
		return LoginResult{}, fmt.Errorf("service: mfa summary: %w", err)
	}
	sum := sums[u.ID]
	switch {
	case sum.Enabled() && otp != "":
		// The password's attempt covers the code sent with it.
		method, err := s.checkCodeIn(ctx, u, otp, ip, w)
		if err != nil {
			return LoginResult{}, err
		}
		if err := s.clearAttempts(ctx, account, u.ID); err != nil {
			return LoginResult{}, err
		}
		return s.startSession(ctx, u, "password", amrOf([]string{AMRPassword}, method), "", "")
	case sum.Enabled():
		methods := []string{MFAMethodRecoveryCode}
		if sum.TOTP {
			methods = append([]string{MFAMethodTOTP}, methods...)
		}
		if sum.Passkeys > 0 && s.mfa.RP != nil {
			methods = append(methods, MFAMethodWebAuthn)
		}
		return LoginResult{}, s.pendingSignIn(ctx, u, store.ChallengeLogin, methods)
	case s.mfaRequiredFor(u.Role):
		if err := s.clearAttempts(ctx, account, u.ID); err != nil {
			return LoginResult{}, err
		}
		methods := []string{MFAMethodTOTP}
		if s.mfa.RP != nil {
			methods = append(methods, MFAMethodWebAuthn)
		}
		return LoginResult{}, s.pendingSignIn(ctx, u, store.ChallengeEnroll, methods)
	}
	return s.passwordSession(ctx, u, account)
}

func (s *Service) passwordSession(ctx context.Context, u store.User, account string) (LoginResult, error) {
	if err := s.clearAttempts(ctx, account, u.ID); err != nil {
		return LoginResult{}, err
	}
	return s.startSession(ctx, u, "password", []string{AMRPassword}, "", "")
}

// clearAttempts empties the account's attempt window after a complete
// sign-in (both names of the window: the one typed and the user's).
func (s *Service) clearAttempts(ctx context.Context, account, userID string) error {
	for _, sub := range []string{account, "user:" + userID} {
		if sub == "" {
			continue
		}
		if err := s.store.ClearLoginFailures(ctx, sub); err != nil {
			return fmt.Errorf("service: clear failures: %w", err)
		}
	}
	return nil
}

func amrOf(proven []string, more ...string) []string {
	out := slices.Clone(proven)
	for _, m := range more {
		if m != "" && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	if !slices.Contains(out, AMRMFA) && len(out) > 1 {
		out = append(out, AMRMFA)
	}
	return out
}

// newToken is a random bearer token; only its hash is stored.
func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("service: token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func (s *Service) challengeTTL(purpose string) time.Duration {
	if purpose == store.ChallengeEnroll {
		return s.mfa.EnrollTTL
	}
	return s.mfa.ChallengeTTL
}

// newChallenge stores a pending step and returns its token.
func (s *Service) newChallenge(ctx context.Context, userID, purpose string, amr []string, data string) (string, store.MFAChallenge, error) {
	tok, err := newToken()
	if err != nil {
		return "", store.MFAChallenge{}, err
	}
	now := s.Now()
	c := store.MFAChallenge{IDHash: HashSecret(tok), UserID: userID, Purpose: purpose, AMR: amr, Data: data, CreatedAt: now,
		ExpiresAt: now.Add(s.challengeTTL(purpose))}
	if err := s.store.CreateMFAChallenge(ctx, &c); err != nil {
		return "", store.MFAChallenge{}, fmt.Errorf("service: create mfa challenge: %w", err)
	}
	return tok, c, nil
}

func (s *Service) pendingSignIn(ctx context.Context, u store.User, purpose string, methods []string) error {
	tok, c, err := s.newChallenge(ctx, u.ID, purpose, []string{AMRPassword}, "")
	if err != nil {
		return err
	}
	action := "login.mfa_required"
	if purpose == store.ChallengeEnroll {
		action = "login.mfa_setup_required"
	}
	if err := s.audit(ctx, s.store, auth.Principal{UserID: u.ID, Role: rbac.Role(u.Role)}, action, "user", u.ID, nil, nil); err != nil {
		return err
	}
	return &MFARequiredError{Token: tok, ExpiresAt: c.ExpiresAt, Setup: purpose == store.ChallengeEnroll, Methods: methods}
}

// challenge reads a live challenge of one of purposes by its token.
func (s *Service) challenge(ctx context.Context, token string, purposes ...string) (store.MFAChallenge, error) {
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 200 {
		return store.MFAChallenge{}, errMFAChallenge
	}
	c, err := s.store.GetMFAChallenge(ctx, HashSecret(token))
	if errors.Is(err, store.ErrNotFound) {
		return store.MFAChallenge{}, errMFAChallenge
	}
	if err != nil {
		return store.MFAChallenge{}, fmt.Errorf("service: get mfa challenge: %w", err)
	}
	if c.ConsumedAt != nil || !s.Now().Before(c.ExpiresAt) || !slices.Contains(purposes, c.Purpose) {
		return store.MFAChallenge{}, errMFAChallenge
	}
	return c, nil
}

// consume spends a challenge once; a lost race reads as expired.
func (s *Service) consume(ctx context.Context, c store.MFAChallenge) error {
	_, err := s.store.ConsumeMFAChallenge(ctx, c.IDHash, s.Now())
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return errMFAChallenge
	}
	if err != nil {
		return fmt.Errorf("service: consume mfa challenge: %w", err)
	}
	return nil
}

// MFALogin is the second step of a sign-in (POST /v2/login/mfa): the
// pending sign-in's token and a TOTP code, a recovery code or a passkey
// assertion (the browser's PublicKeyCredential as JSON).
type MFALogin struct {
	Token    string          `json:"mfa_token"`
	Code     string          `json:"code"`
	WebAuthn json.RawMessage `json:"webauthn"`
	ClientIP string          `json:"-"`
	// TrustedDevice is LoginInput's: the account a valid device cookie
	// names.
	TrustedDevice string `json:"-"`
}

// CompleteMFALogin finishes a pending sign-in with its second factor, or
// a passwordless one with its passkey, and starts the session.
func (s *Service) CompleteMFALogin(ctx context.Context, in MFALogin) (LoginResult, error) {
	if err := s.sessionsEnabled(); err != nil {
		return LoginResult{}, err
	}
	if !s.mfaEnabled() {
		return LoginResult{}, errMFADisabled
	}
	c, err := s.challenge(ctx, in.Token, store.ChallengeLogin, store.ChallengePasskeyLogin)
	if err != nil {
		return LoginResult{}, err
	}
	if c.Purpose == store.ChallengePasskeyLogin {
		return s.passwordless(ctx, c, in)
	}
	u, err := s.store.GetUser(ctx, c.UserID)
	if err != nil || u.Disabled {
		return LoginResult{}, errMFAChallenge
	}
	release, err := s.slowAddress(ctx, in.ClientIP, in.TrustedDevice == u.ID)
	if err != nil {
		return LoginResult{}, err
	}
	defer release()
	var method string
	switch {
	case len(in.WebAuthn) > 0 && in.Code == "":
		method, err = s.checkPasskey(ctx, u, c, in.WebAuthn, in.ClientIP)
	case in.Code != "" && len(in.WebAuthn) == 0:
		method, err = s.checkCodeAt(ctx, u, in.Code, in.ClientIP)
	default:
		return LoginResult{}, apperr.InvalidParam("code", "Send either code (a TOTP or recovery code) or webauthn (a passkey assertion).")
	}
	if err != nil {
		return LoginResult{}, err
	}
	if err := s.consume(ctx, c); err != nil {
		return LoginResult{}, err
	}
	if err := s.clearAttempts(ctx, "", u.ID); err != nil {
		return LoginResult{}, err
	}
	return s.startSession(ctx, u, "password", amrOf(c.AMR, method), "", "")
}

// checkCodeAt takes an attempt of the account, then checks code: a TOTP
// code (each time step accepted once) or an unused recovery code (spent).
// A miss counts like a wrong password and is audited.
func (s *Service) checkCodeAt(ctx context.Context, u store.User, code, ip string) (string, error) {
	return s.checkCodeIn(ctx, u, code, ip, nil)
}

// checkCodeIn is checkCodeAt within an attempt already taken (w), or a
// new one when w is nil.
func (s *Service) checkCodeIn(ctx context.Context, u store.User, code, ip string, w *store.AttemptWindow) (string, error) {
	if w == nil {
		nw, err := s.takeAttempt(ctx, "user:"+u.ID, s.sessions.MaxFailures, s.sessions.Window, "Too many failed sign-ins")
		if err != nil {
			return "", fmt.Errorf("service: mfa attempt: %w", err)
		}
		w = &nw
	}
	ok, recovery, err := s.verifyCode(ctx, u, code)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", s.factorFailed(ctx, ip, *w, u)
	}
	if recovery {
		left, _ := s.store.CountRecoveryCodes(ctx, u.ID)
		if err := s.audit(ctx, s.store, auth.Principal{UserID: u.ID, Role: rbac.Role(u.Role)}, "mfa.recovery_code_used", "user", u.ID,
			nil, map[string]any{"recovery_codes_left": left}); err != nil {
			return "", err
		}
		s.mailNotice(ctx, u, fmt.Sprintf("A recovery code was used on your account; %d unused codes are left.", left))
	}
	return AMROTP, nil
}

// verifyCode checks a TOTP code (spending its time step) or a recovery
// code (spending it).
func (s *Service) verifyCode(ctx context.Context, u store.User, code string) (ok, recovery bool, err error) {
	code = mfa.NormalizeCode(code)
	switch {
	case mfa.LooksLikeTOTP(code):
		t, err := s.store.GetTOTP(ctx, u.ID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && t.ConfirmedAt == nil) {
			return false, false, nil
		}
		if err != nil {
			return false, false, fmt.Errorf("service: get totp: %w", err)
		}
		secret, err := s.openTOTP(u.ID, t.SecretSealed)
		if err != nil {
			return false, false, err
		}
		step, match := mfa.CheckTOTP(secret, code, s.Now())
		if !match {
			return false, false, nil
		}
		// Each time step is accepted once: a code seen on the wire (or
		// typed twice) is refused, however many replicas it is sent to.
		used, err := s.store.UseTOTPStep(ctx, u.ID, step)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, false, fmt.Errorf("service: use totp step: %w", err)
		}
		return used, false, nil
	case mfa.LooksLikeRecoveryCode(code):
		used, err := s.store.UseRecoveryCode(ctx, u.ID, mfa.HashRecoveryCode(u.ID, code), s.Now())
		if err != nil {
			return false, false, fmt.Errorf("service: use recovery code: %w", err)
		}
		return used, used, nil
	}
	return false, false, nil
}

// factorFailed records a wrong code or assertion as a failed sign-in:
// against the client address, in the audit log, and as a 429 once the
// account's window is full.
func (s *Service) factorFailed(ctx context.Context, ip string, w store.AttemptWindow, u store.User) error {
	now := s.Now()
	if ip != "" {
		if err := s.store.RecordLoginFailure(ctx, addrSubject(ip), now); err != nil {
			return fmt.Errorf("service: record login failure: %w", err)
		}
	}
	actor := auth.Principal{UserID: u.ID}
	_ = s.audit(ctx, s.store, actor, "login.mfa_failed", "user", u.ID, nil, nil)
	if w.Count >= s.sessions.MaxFailures {
		_ = s.audit(ctx, s.store, actor, "login.lockout", "user", u.ID, nil, nil)
		return tooMany("Too many failed sign-ins", w.Oldest, s.sessions.Window, now)
	}
	return errBadCode
}

// checkPasskey verifies a second-factor assertion against the ceremony
// begun on challenge c (BeginMFAWebAuthn) and u's passkeys.
func (s *Service) checkPasskey(ctx context.Context, u store.User, c store.MFAChallenge, response []byte, ip string) (string, error) {
	if s.mfa.RP == nil {
		return "", errPasskeysOff
	}
	w, err := s.takeAttempt(ctx, "user:"+u.ID, s.sessions.MaxFailures, s.sessions.Window, "Too many failed sign-ins")
	if err != nil {
		return "", fmt.Errorf("service: mfa attempt: %w", err)
	}
	method, err := s.verifyAssertion(ctx, u, c.Data, response)
	if errors.Is(err, mfa.ErrAssertion) {
		s.log.DebugContext(ctx, "passkey assertion refused", "user_id", u.ID, "err", err)
		return "", s.factorFailed(ctx, ip, w, u)
	}
	return method, err
}

// verifyAssertion checks an assertion against ceremony state and u's
// passkeys and records the passkey's new counter and last use.
func (s *Service) verifyAssertion(ctx context.Context, u store.User, state string, response []byte) (string, error) {
	a, err := mfa.ParseAssertion(response)
	if err != nil {
		return "", err
	}
	keys, err := s.store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return "", fmt.Errorf("service: list passkeys: %w", err)
	}
	wu, err := s.webauthnUser(u, keys)
	if err != nil {
		return "", err
	}
	cred, err := s.mfa.RP.FinishLogin(wu, state, a)
	if err != nil {
		return "", err
	}
	record, err := json.Marshal(cred)
	if err != nil {
		return "", fmt.Errorf("service: encode passkey: %w", err)
	}
	now := s.Now()
	if _, err := s.store.UpdatePasskey(ctx, mfa.CredentialID(cred.ID), func(p *store.Passkey) error {
		p.Credential, p.LastUsedAt = record, &now
		return nil
	}); err != nil {
		return "", fmt.Errorf("service: update passkey: %w", err)
	}
	return mfa.Method(*cred), nil
}

// passwordless finishes a sign-in with a passkey alone: the passkey names
// its owner, the authenticator verified the user, and the session counts
// as two factors.
func (s *Service) passwordless(ctx context.Context, c store.MFAChallenge, in MFALogin) (LoginResult, error) {
	if s.mfa.RP == nil {
		return LoginResult{}, errPasskeysOff
	}
	if len(in.WebAuthn) == 0 || in.Code != "" {
		return LoginResult{}, apperr.InvalidParam("webauthn", "A passwordless sign-in is finished with a passkey assertion (webauthn).")
	}
	a, err := mfa.ParseAssertion(in.WebAuthn)
	if err != nil {
		return LoginResult{}, errBadPasskey
	}
	pk, err := s.store.GetPasskey(ctx, a.CredentialID)
	if errors.Is(err, store.ErrNotFound) {
		return LoginResult{}, errBadPasskey
	}
	if err != nil {
		return LoginResult{}, fmt.Errorf("service: get passkey: %w", err)
	}
	u, err := s.store.GetUser(ctx, pk.UserID)
	if err != nil || u.Disabled {
		return LoginResult{}, errBadPasskey
	}
	release, err := s.slowAddress(ctx, in.ClientIP, in.TrustedDevice == u.ID)
	if err != nil {
		return LoginResult{}, err
	}
	defer release()
	w, err := s.takeAttempt(ctx, "user:"+u.ID, s.sessions.MaxFailures, s.sessions.Window, "Too many failed sign-ins")
	if err != nil {
		return LoginResult{}, fmt.Errorf("service: passkey attempt: %w", err)
	}
	method, err := s.verifyAssertion(ctx, u, c.Data, in.WebAuthn)
	if errors.Is(err, mfa.ErrAssertion) {
		s.log.DebugContext(ctx, "passwordless assertion refused", "user_id", u.ID, "err", err)
		if ferr := s.factorFailed(ctx, in.ClientIP, w, u); !errors.Is(ferr, errBadCode) {
			return LoginResult{}, ferr
		}
		return LoginResult{}, errBadPasskey
	}
	if err != nil {
		return LoginResult{}, err
	}
	if err := s.consume(ctx, c); err != nil {
		return LoginResult{}, err
	}
	if err := s.clearAttempts(ctx, "", u.ID); err != nil {
		return LoginResult{}, err
	}
	return s.startSession(ctx, u, "passkey", []string{method, AMRMFA}, "", "")
}

const passwordlessPerMinute = 30

var (
	errPasskeysOff = apperr.Disabled("Passkeys need a host name in PROXY_BASE_URL (browsers refuse an IP address).")
	errBadPasskey  = apperr.Unauthenticated("This passkey is not registered here or could not be verified.")
)

// WebAuthnBegin is a begun passkey ceremony: the options for
// navigator.credentials.create/get, and the token to send back with its
// answer.
type WebAuthnBegin struct {
	Token     string
	ExpiresAt time.Time
	Options   json.RawMessage
}

// BeginMFAWebAuthn starts a passkey assertion: with a pending sign-in's
// token, as its second factor (the token stays the same); without, a
// passwordless sign-in (a new token).
// A passwordless begin needs no credential, so each client address may
// begin at most passwordlessPerMinute per minute: the challenges it
// stores (until they expire) stay bounded.
func (s *Service) BeginMFAWebAuthn(ctx context.Context, token string) (WebAuthnBegin, error) {
	if err := s.sessionsEnabled(); err != nil {
		return WebAuthnBegin{}, err
	}
	if !s.mfaEnabled() {
		return WebAuthnBegin{}, errMFADisabled
	}
	if s.mfa.RP == nil {
		return WebAuthnBegin{}, errPasskeysOff
	}
	if strings.TrimSpace(token) == "" {
		if s.sessions.PasswordLoginDisabled {
			return WebAuthnBegin{}, apperr.Forbidden("Passkey sign-in is disabled on this server with password login; sign in with SSO.")
		}
		if ip := metaOf(ctx).ClientIP; ip != "" {
			if _, err := s.takeAttempt(ctx, "passkey-begin:"+ip, passwordlessPerMinute, time.Minute, "Too many passkey sign-ins from your network"); err != nil {
				return WebAuthnBegin{}, err
			}
		}
		cer, err := s.mfa.RP.BeginPasswordless()
		if err != nil {
			return WebAuthnBegin{}, err
		}
		tok, c, err := s.newChallenge(ctx, "", store.ChallengePasskeyLogin, nil, cer.State)
		if err != nil {
			return WebAuthnBegin{}, err
		}
		return WebAuthnBegin{Token: tok, ExpiresAt: c.ExpiresAt, Options: cer.Options}, nil
	}
	c, err := s.challenge(ctx, token, store.ChallengeLogin)
	if err != nil {
		return WebAuthnBegin{}, err
	}
	u, err := s.store.GetUser(ctx, c.UserID)
	if err != nil {
		return WebAuthnBegin{}, errMFAChallenge
	}
	cer, err := s.beginAssertion(ctx, u, "You have no passkey; use a code from your authenticator app or a recovery code.")
	if err != nil {
		return WebAuthnBegin{}, err
	}
	if err := s.store.SetMFAChallengeData(ctx, c.IDHash, cer.State); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return WebAuthnBegin{}, errMFAChallenge
		}
		return WebAuthnBegin{}, fmt.Errorf("service: store ceremony: %w", err)
	}
	return WebAuthnBegin{Token: strings.TrimSpace(token), ExpiresAt: c.ExpiresAt, Options: cer.Options}, nil
}

// MFAPending describes a pending sign-in for the browser's second step.
type MFAPending struct {
	Setup     bool
	Methods   []string
	Email     string
	ExpiresAt time.Time
}

// PendingSignIn reads a pending sign-in (second step or setup) without
// spending it.
func (s *Service) PendingSignIn(ctx context.Context, token string) (MFAPending, error) {
	if !s.mfaEnabled() {
		return MFAPending{}, errMFADisabled
	}
	c, err := s.challenge(ctx, token, store.ChallengeLogin, store.ChallengeEnroll)
	if err != nil {
		return MFAPending{}, err
	}
	u, err := s.store.GetUser(ctx, c.UserID)
	if err != nil || u.Disabled {
		return MFAPending{}, errMFAChallenge
	}
	out := MFAPending{Setup: c.Purpose == store.ChallengeEnroll, Email: u.Email, ExpiresAt: c.ExpiresAt}
	if out.Email == "" {
		out.Email = u.ID
	}
	if out.Setup {
		out.Methods = []string{MFAMethodTOTP}
		if s.mfa.RP != nil {
			out.Methods = append(out.Methods, MFAMethodWebAuthn)
		}
		return out, nil
	}
	sums, err := s.store.MFASummaries(ctx, []string{u.ID})
	if err != nil {
		return MFAPending{}, fmt.Errorf("service: mfa summary: %w", err)
	}
	if sums[u.ID].TOTP {
		out.Methods = append(out.Methods, MFAMethodTOTP)
	}
	out.Methods = append(out.Methods, MFAMethodRecoveryCode)
	if sums[u.ID].Passkeys > 0 && s.mfa.RP != nil {
		out.Methods = append(out.Methods, MFAMethodWebAuthn)
	}
	return out, nil
}

// PasskeysAvailable reports whether this server can use passkeys (its
// base URL has a host name).
func (s *Service) PasskeysAvailable() bool { return s.mfaEnabled() && s.mfa.RP != nil }
