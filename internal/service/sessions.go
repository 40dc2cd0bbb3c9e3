package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/password"
	"github.com/keygate/keygate/auth/session"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// TokenMinter issues session JWTs (auth/session.Issuer).
type TokenMinter interface {
	Mint(ctx context.Context, in session.MintInput) (string, time.Time, error)
}

// SessionOptions configures logins.
type SessionOptions struct {
	// Tokens mints session JWTs; nil disables logins (503 with a clear
	// message: the operator has not configured KEYGATE_SECRET).
	Tokens TokenMinter
	// TTL is how long a session lives (default 24 h).
	TTL time.Duration
	// MaxFailures password attempts per account (and per user for
	// password changes) within Window; further attempts get 429 until
	// the oldest leaves the window (default 5 / 15 min).
	MaxFailures int64
	Window      time.Duration
	// AddrFreeFailures failures from one client address within Window
	// cost nothing (default 10); each further one doubles the wait before
	// that address's next password check, from AddrDelay (500 ms) up to
	// AddrMaxDelay (8 s), one check at a time per address.
	AddrFreeFailures        int64
	AddrDelay, AddrMaxDelay time.Duration
	// Sleep waits d or until ctx ends; tests replace it to observe the
	// slow-down without waiting.
	Sleep func(ctx context.Context, d time.Duration) error
	// PasswordLoginDisabled refuses password logins (SSO only).
	PasswordLoginDisabled bool
}

// LoginResult is a started session and its first token.
type LoginResult struct {
	Session      store.Session
	User         store.User
	Token        string
	TokenExpires time.Time
}

// LoginInput is an e-mail (or user id) and password attempt.
type LoginInput struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// OTP, for scripts, is a TOTP or recovery code sent with the password
	// in one call; without it a user with a second factor gets
	// MFARequiredError.
	OTP      string `json:"otp"`
	ClientIP string `json:"-"`
	// TrustedDevice is the account a valid device cookie names (set by
	// internal/websession after a sign-in from this browser); a sign-in
	// to that account skips the per-address slow-down.
	TrustedDevice string `json:"-"`
}

// errBadCredentials is the one answer for every failed login, so a caller
// cannot tell an unknown user from a wrong password.
var errBadCredentials = apperr.Unauthenticated("Invalid credentials.")

func (s *Service) sessionsEnabled() error {
	if s.sessions.Tokens == nil {
		return apperr.Disabled("Logins are disabled: set KEYGATE_SECRET (or LITELLM_SALT_KEY) so Keygate can keep signing keys.")
	}
	return nil
}

// Login checks a password and starts a session. Unknown users and wrong
// passwords cost the same (a dummy hash is verified) and get the same
// answer. The attempt is recorded against the account before the
// password is checked (attempts.go), so no burst gets more than
// MaxFailures guesses per window; the client address is slowed down by
// its own failures but never locked, and not at all for the account a
// device cookie names (in.TrustedDevice).
func (s *Service) Login(ctx context.Context, in LoginInput) (LoginResult, error) {
	if err := s.sessionsEnabled(); err != nil {
		return LoginResult{}, err
	}
	if s.sessions.PasswordLoginDisabled {
		return LoginResult{}, apperr.Forbidden("Password login is disabled on this server; sign in with SSO.")
	}
	if s.passwords == nil {
		return LoginResult{}, apperr.Disabled("Password login is not available on this server.")
	}
	username := strings.TrimSpace(in.Username)
	if username == "" || in.Password == "" {
		return LoginResult{}, apperr.InvalidParam("username", "username and password are required.")
	}
	if len(username) > 320 || len(in.Password) > 1024 {
		return LoginResult{}, errBadCredentials
	}
	u, err := s.store.GetUserByEmail(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		u, err = s.store.GetUser(ctx, username)
	}
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return LoginResult{}, fmt.Errorf("service: login lookup: %w", err)
	}
	// One bucket per account, whichever of its names was typed; unknown
	// names get buckets of their own so they answer alike.
	account := "account:" + strings.ToLower(username)
	if found {
		account = "user:" + u.ID
	}
	release, err := s.slowAddress(ctx, in.ClientIP, found && in.TrustedDevice == u.ID)
	if err != nil {
		return LoginResult{}, err
	}
	defer release()
	// The hashing queue is asked first: its overload 429 must not count
	// as a failed attempt, and once recorded an attempt stays counted.
	slot, err := s.passwords.Reserve()
	if err != nil {
		return LoginResult{}, err
	}
	defer slot.Release()
	w, err := s.takeAttempt(ctx, account, s.sessions.MaxFailures, s.sessions.Window, "Too many login attempts")
	if err != nil {
		return LoginResult{}, fmt.Errorf("service: login attempt: %w", err)
	}
	ok, rehash := false, false
	if found && u.PasswordHash != "" {
		ok, rehash, err = slot.Verify(ctx, u.PasswordHash, in.Password)
		if err != nil && !errors.Is(err, password.ErrInvalidHash) {
			return LoginResult{}, err // the client went away while queued
		}
		if err != nil {
			s.log.Warn("stored password hash unusable", "user_id", u.ID, "err", err)
			ok = false
		}
	} else if err := slot.VerifyDummy(ctx, in.Password); err != nil {
		return LoginResult{}, err
	}
	if !ok || u.Disabled {
		return LoginResult{}, s.loginFailed(ctx, in.ClientIP, w, u.ID)
	}
	if rehash {
		if h, err := s.passwords.Hash(ctx, in.Password); err == nil {
			_, _ = s.store.UpdateUser(ctx, u.ID, func(x *store.User) error { x.PasswordHash = h; return nil })
		}
	}
	// The window is cleared once the sign-in is complete: at once for a
	// password-only account, after the second factor otherwise.
	return s.passwordVerified(ctx, u, account, in.OTP, in.ClientIP, &w)
}

// loginFailed counts the failure against the client address, audits it,
// and answers 429 once this failure filled the account's window.
func (s *Service) loginFailed(ctx context.Context, ip string, w store.AttemptWindow, userID string) error {
	now := s.Now()
	if ip != "" {
		if err := s.store.RecordLoginFailure(ctx, addrSubject(ip), now); err != nil {
			return fmt.Errorf("service: record login failure: %w", err)
		}
	}
	actor := auth.Principal{UserID: userID}
	_ = s.audit(ctx, s.store, actor, "login.failed", "user", userID, nil, nil)
	if w.Count >= s.sessions.MaxFailures {
		_ = s.audit(ctx, s.store, actor, "login.lockout", "user", userID, nil, nil)
		return tooMany("Too many failed logins", w.Oldest, s.sessions.Window, now)
	}
	return errBadCredentials
}

// checkCurrentPassword is the signed-in user proving a change with their
// password (param names the field in the 400). A stolen session must not
// become a password oracle: the check gets the login's attempt limit, and
// misses are audited.
func (s *Service) checkCurrentPassword(ctx context.Context, p auth.Principal, u store.User, pw, param string) error {
	if s.passwords == nil {
		return apperr.Disabled("Password login is not available on this server.")
	}
	// The login's own bucket: at most MaxFailures passwords per account
	// and window are ever evaluated, whether typed at the sign-in or to
	// prove a change from a session (a separate bucket gave a stolen
	// session 5 guesses more).
	subject := "user:" + u.ID
	// As at login: an overload refusal comes before the attempt counts.
	slot, err := s.passwords.Reserve()
	if err != nil {
		return err
	}
	defer slot.Release()
	if _, err := s.takeAttempt(ctx, subject, s.sessions.MaxFailures, s.sessions.Window, "Too many wrong current passwords"); err != nil {
		return fmt.Errorf("service: password check attempt: %w", err)
	}
	ok := false
	if u.PasswordHash != "" {
		ok, _, err = slot.Verify(ctx, u.PasswordHash, pw)
		if err != nil && !errors.Is(err, password.ErrInvalidHash) {
			return err
		}
	} else if err := slot.VerifyDummy(ctx, pw); err != nil {
		return err
	}
	if !ok {
		if err := s.audit(ctx, s.store, p, "user.password_change_failed", "user", u.ID, nil, nil); err != nil {
			return err
		}
		return apperr.InvalidParam(param, "The current password is wrong.")
	}
	if err := s.store.ClearLoginFailures(ctx, subject); err != nil {
		return fmt.Errorf("service: clear password attempts: %w", err)
	}
	return nil
}

// StartSession creates a session row for u and mints its first token.
// SSO ends here; password sign-ins end in startSession after the second
// factor (mfa_login.go).
func (s *Service) StartSession(ctx context.Context, u store.User, method, idToken, ssoSID string) (LoginResult, error) {
	return s.startSession(ctx, u, method, nil, idToken, ssoSID)
}

// startSession is StartSession recording how the user proved who they
// are (amr, RFC 8176).
func (s *Service) startSession(ctx context.Context, u store.User, method string, amr []string, idToken, ssoSID string) (LoginResult, error) {
	if err := s.sessionsEnabled(); err != nil {
		return LoginResult{}, err
	}
	sess, err := s.openSession(ctx, s.store, u, method, amr, idToken, ssoSID)
	if err != nil {
		return LoginResult{}, err
	}
	return s.finishLogin(ctx, sess, u)
}

// openSession writes u's new session row and its audit event in tx, so a
// compound login (SSO provisioning or linking) can make it part of its
// own transaction.
func (s *Service) openSession(ctx context.Context, tx store.Store, u store.User, method string, amr []string, idToken, ssoSID string) (store.Session, error) {
	now := s.Now()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return store.Session{}, fmt.Errorf("service: session id: %w", err)
	}
	sess := store.Session{ID: hex.EncodeToString(b[:]), UserID: u.ID, Role: u.Role, LoginMethod: method, AMR: amr,
		IDToken: idToken, SSOSID: ssoSID, CreatedAt: now, ExpiresAt: now.Add(s.sessions.TTL)}
	err := tx.Tx(ctx, func(tx store.Store) error {
		if err := tx.CreateSession(ctx, &sess); err != nil {
			return fmt.Errorf("service: create session: %w", err)
		}
		return s.audit(ctx, tx, auth.Principal{UserID: u.ID, Role: rbac.Role(u.Role)}, "login.succeeded", "session", sess.ID,
			nil, map[string]any{"user_id": u.ID, "login_method": method, "amr": amr})
	})
	return sess, err
}

// finishLogin mints the first token of a committed session.
func (s *Service) finishLogin(ctx context.Context, sess store.Session, u store.User) (LoginResult, error) {
	tok, exp, err := s.mint(ctx, sess, u)
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{Session: sess, User: u, Token: tok, TokenExpires: exp}, nil
}

func (s *Service) mint(ctx context.Context, sess store.Session, u store.User) (string, time.Time, error) {
	ms, err := s.store.ListMembershipsByUser(ctx, u.ID)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("service: list memberships: %w", err)
	}
	teams := make([]string, 0, len(ms))
	for _, m := range ms {
		teams = append(teams, m.TeamID)
	}
	tok, exp, err := s.sessions.Tokens.Mint(ctx, session.MintInput{UserID: u.ID, Email: u.Email, Role: u.Role,
		LoginMethod: sess.LoginMethod, AMR: sess.AMR, Teams: teams, SessionID: sess.ID, SessionExpiresAt: sess.ExpiresAt})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("service: mint session token: %w", err)
	}
	return tok, exp, nil
}

// RefreshToken mints a new token for the principal's live session.
func (s *Service) RefreshToken(ctx context.Context, p auth.Principal) (string, time.Time, error) {
	res, err := s.RenewSession(ctx, p)
	return res.Token, res.TokenExpires, err
}

// RenewSession mints a new token for the principal's live session and
// returns it with the session, so a browser's cookies can be set to the
// session's remaining life.
func (s *Service) RenewSession(ctx context.Context, p auth.Principal) (LoginResult, error) {
	if err := s.sessionsEnabled(); err != nil {
		return LoginResult{}, err
	}
	if p.Method != auth.MethodSession || p.SessionID == "" {
		return LoginResult{}, apperr.Forbidden("Only a session can be refreshed; API keys do not expire this way.")
	}
	sess, err := s.store.GetSession(ctx, p.SessionID)
	if err != nil {
		return LoginResult{}, notFound(err, "Session not found.")
	}
	u, err := s.store.GetUser(ctx, p.UserID)
	if err != nil {
		return LoginResult{}, notFound(err, "User not found.")
	}
	tok, exp, err := s.mint(ctx, sess, u)
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{Session: sess, User: u, Token: tok, TokenExpires: exp}, nil
}

// Logout revokes the principal's session. It is idempotent.
func (s *Service) Logout(ctx context.Context, p auth.Principal) (bool, error) {
	if p.Method != auth.MethodSession || p.SessionID == "" {
		return false, apperr.Forbidden("Only a login session can be logged out; delete API keys with /key/delete.")
	}
	return s.revokeSession(ctx, p, p.SessionID)
}

// RevokeSessionByID revokes a session known only by id (the UI's logout,
// whose cookie may hold an expired token) and returns the session row, so
// the caller can end an SSO session at the identity provider too.
func (s *Service) RevokeSessionByID(ctx context.Context, userID, sid string) (store.Session, bool, error) {
	sess, err := s.store.GetSession(ctx, sid)
	if err != nil {
		return store.Session{}, false, notFound(err, "Session not found.")
	}
	ok, err := s.revokeSession(ctx, auth.Principal{UserID: userID, Method: auth.MethodSession, SessionID: sid}, sid)
	return sess, ok, err
}

func (s *Service) revokeSession(ctx context.Context, p auth.Principal, sid string) (bool, error) {
	sess, err := s.store.GetSession(ctx, sid)
	if err != nil {
		return false, notFound(err, "Session not found.")
	}
	if sess.RevokedAt != nil {
		return false, nil
	}
	err = s.tx(ctx, func(tx store.Store, ch *Changes) error {
		if err := tx.RevokeSession(ctx, sid, s.Now()); err != nil {
			return fmt.Errorf("service: revoke session: %w", err)
		}
		ch.Session(sid)
		return s.audit(ctx, tx, p, "logout", "session", sid, nil, map[string]any{"user_id": sess.UserID})
	})
	if err != nil {
		return false, err
	}
	return true, nil
}

// PasswordChange is /user/password/change's body.
type PasswordChange struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// ChangePassword sets a new password after checking the current one and
// revokes the user's other sessions (the calling session stays).
func (s *Service) ChangePassword(ctx context.Context, p auth.Principal, in PasswordChange) error {
	if err := require(p, rbac.PermPasswordChangeOwn); err != nil {
		return err
	}
	if p.UserID == "" {
		return apperr.Forbidden("Only a user can change a password; the master key has none.")
	}
	if s.passwords == nil {
		return apperr.Disabled("Password login is not available on this server.")
	}
	if err := ValidatePassword(in.NewPassword); err != nil {
		return err
	}
	if in.NewPassword == in.CurrentPassword {
		return apperr.InvalidParam("new_password", "The new password must differ from the current one.")
	}
	u, err := s.store.GetUser(ctx, p.UserID)
	if err != nil {
		return notFound(err, "User not found.")
	}
	if err := s.checkCurrentPassword(ctx, p, u, in.CurrentPassword, "current_password"); err != nil {
		return err
	}
	h, err := s.passwords.Hash(ctx, in.NewPassword)
	if err != nil {
		return fmt.Errorf("service: hash password: %w", err)
	}
	err = s.tx(ctx, func(tx store.Store, ch *Changes) error {
		if _, err := tx.UpdateUser(ctx, u.ID, func(x *store.User) error { x.PasswordHash = h; x.UpdatedAt = s.Now(); return nil }); err != nil {
			return notFound(err, "User not found.")
		}
		var keep []string
		if p.SessionID != "" {
			keep = append(keep, p.SessionID)
		}
		ids, err := tx.RevokeUserSessions(ctx, u.ID, s.Now(), keep...)
		if err != nil {
			return fmt.Errorf("service: revoke sessions: %w", err)
		}
		ch.Session(ids...)
		return s.audit(ctx, tx, p, "user.password_changed", "user", u.ID, nil, map[string]any{"sessions_revoked": len(ids)})
	})
	if err != nil {
		return err
	}
	return nil
}

// EnsureBootstrapAdmin makes sure the UI_USERNAME / UI_PASSWORD admin
// exists as a proxy_admin with that password. The user id is the username;
// it is also the e-mail when it looks like one.
func (s *Service) EnsureBootstrapAdmin(ctx context.Context, username, password string) error {
	if username == "" || password == "" {
		return nil
	}
	if s.passwords == nil {
		return errors.New("service: bootstrap admin needs password hashing")
	}
	if err := ValidatePassword(password); err != nil {
		return fmt.Errorf("UI_PASSWORD: %w", err)
	}
	u, err := s.store.GetUser(ctx, username)
	if err == nil {
		if u.PasswordHash != "" {
			if ok, _, _ := s.passwords.Verify(ctx, u.PasswordHash, password); ok && u.Role == string(rbac.RoleProxyAdmin) && !u.Disabled {
				return nil
			}
		}
		h, err := s.passwords.Hash(ctx, password)
		if err != nil {
			return fmt.Errorf("service: hash bootstrap password: %w", err)
		}
		return s.tx(ctx, func(tx store.Store, ch *Changes) error {
			ch.Users = []string{u.ID}
			_, err := tx.UpdateUser(ctx, u.ID, func(x *store.User) error {
				x.PasswordHash, x.Role, x.Disabled, x.UpdatedAt = h, string(rbac.RoleProxyAdmin), false, s.Now()
				return nil
			})
			return err
		})
	}
	if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("service: bootstrap admin: %w", err)
	}
	h, err := s.passwords.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("service: hash bootstrap password: %w", err)
	}
	now := s.Now()
	nu := store.User{ID: username, Role: string(rbac.RoleProxyAdmin), PasswordHash: h, CreatedAt: now, UpdatedAt: now}
	if strings.Contains(username, "@") {
		nu.Email = username
	}
	if err := s.store.CreateUser(ctx, &nu); err != nil {
		return fmt.Errorf("service: create bootstrap admin: %w", err)
	}
	return nil
}
