package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/httperr"
	"github.com/keygate/keygate/internal/service"
)

// MFAOps is what the second-factor routes need.
type MFAOps interface {
	MyMFA(ctx context.Context, p auth.Principal) (service.MFAStatus, error)
	SetupTOTP(ctx context.Context, p auth.Principal, token string) (service.TOTPSetup, error)
	ConfirmTOTP(ctx context.Context, p auth.Principal, token, code string, proof service.OwnerProof) (service.MFAEnabled, error)
	DisableTOTP(ctx context.Context, p auth.Principal, proof service.MFAProof) error
	BeginPasskeyRegistration(ctx context.Context, p auth.Principal, token string, proof service.OwnerProof) (service.WebAuthnBegin, error)
	FinishPasskeyRegistration(ctx context.Context, p auth.Principal, in service.PasskeyRegistration) (service.MFAEnabled, error)
	DeletePasskey(ctx context.Context, p auth.Principal, id string, proof service.MFAProof) error
	BeginMFAStepUp(ctx context.Context, p auth.Principal) (service.WebAuthnBegin, error)
	RegenerateRecoveryCodes(ctx context.Context, p auth.Principal, proof service.MFAProof) ([]string, error)
	ResetMFA(ctx context.Context, p auth.Principal, userID string) error
	BeginMFAWebAuthn(ctx context.Context, token string) (service.WebAuthnBegin, error)
}

// writeMFARequired answers a right password that needs a second step:
// 401 with LiteLLM's error body, type mfa_required (or
// mfa_setup_required), and the pending sign-in's token beside it.
func writeMFARequired(c *gin.Context, e *service.MFARequiredError) {
	typ := "mfa_required"
	if e.Setup {
		typ = "mfa_setup_required"
	}
	_, _, msg, _, _ := httperr.Resolve(e)
	noStore(c)
	c.Set("keygate.error_type", typ)
	c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{
		"error":                httperr.Detail{Message: msg, Type: typ, Param: "None", Code: "401"},
		"mfa_token":            e.Token,
		"mfa_token_expires_at": e.ExpiresAt,
		"mfa_methods":          e.Methods,
	})
}

// signInError renders a sign-in failure, the second step's answer
// included.
func signInError(c *gin.Context, err error) error {
	if e, ok := service.AsMFARequired(err); ok {
		writeMFARequired(c, e)
		return nil
	}
	return err
}

// pendingSignIn renders a failure of a call that signs in after spending
// a link: the link is spent and the password set, but a second factor is
// still due; the browser keeps the pending sign-in.
func (s *Server) pendingSignIn(c *gin.Context, err error) error {
	if e, ok := service.AsMFARequired(err); ok {
		s.opts.Web.PendMFA(c.Writer, e)
	}
	return signInError(c, err)
}

// decodeOptionalJSON decodes a body when there is one: the calls that
// begin a ceremony need none.
func decodeOptionalJSON(c *gin.Context, v any) error {
	if c.Request.ContentLength == 0 && c.GetHeader("Content-Type") == "" {
		return nil
	}
	return decodeJSON(c, v)
}

// mfaTokenOf is the pending sign-in's token: the body's, else the
// browser's cookie.
func (s *Server) mfaTokenOf(c *gin.Context, fromBody string) string {
	if fromBody != "" {
		return fromBody
	}
	return s.opts.Web.MFAToken(c.Request)
}

type mfaTokenBody struct {
	Token string `json:"mfa_token"`
}

// ---- the second step of a sign-in (public: the token is the credential) ----

// loginMFA is POST /v2/login/mfa: the pending sign-in's token with a
// TOTP code, a recovery code or a passkey assertion.
func (s *Server) loginMFA(c *gin.Context) error {
	var in service.MFALogin
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	in.ClientIP = c.ClientIP()
	res, err := s.opts.Web.CompleteMFA(ctxOf(c), c.Writer, c.Request, in)
	if err != nil {
		return err
	}
	s.loginAnswer(c, res)
	return nil
}

// loginMFAWebAuthn is POST /v2/login/mfa/webauthn: the options of a
// passkey assertion for a pending sign-in, or, without a token, for a
// passwordless one (whose new token is in the answer).
func (s *Server) loginMFAWebAuthn(c *gin.Context) error {
	if err := s.opts.Web.CheckOrigin(c.Request); err != nil {
		return err
	}
	var in mfaTokenBody
	if err := decodeOptionalJSON(c, &in); err != nil {
		return err
	}
	passwordless := c.Query("passwordless") == "true"
	token := in.Token
	if !passwordless {
		token = s.mfaTokenOf(c, in.Token)
	}
	b, err := s.opts.MFA.BeginMFAWebAuthn(ctxOf(c), token)
	if err != nil {
		return err
	}
	if token == "" {
		s.opts.Web.PendMFA(c.Writer, &service.MFARequiredError{Token: b.Token, ExpiresAt: b.ExpiresAt})
	}
	webAuthnAnswer(c, b)
	return nil
}

func webAuthnAnswer(c *gin.Context, b service.WebAuthnBegin) {
	noStore(c)
	c.JSON(http.StatusOK, gin.H{"mfa_token": b.Token, "mfa_token_expires_at": b.ExpiresAt, "options": b.Options})
}

type enrollConfirm struct {
	Token string `json:"mfa_token"`
	Code  string `json:"code"`
}

// enrollTOTPSetup is POST /v2/login/mfa/totp/setup: a new TOTP secret for
// a sign-in the policy held back.
func (s *Server) enrollTOTPSetup(c *gin.Context) error {
	var in mfaTokenBody
	token, err := s.enrollmentToken(c, &in, decodeOptionalJSON, &in.Token)
	if err != nil {
		return err
	}
	out, err := s.opts.MFA.SetupTOTP(ctxOf(c), auth.Principal{}, token)
	if err != nil {
		return err
	}
	noStore(c)
	c.JSON(http.StatusOK, out)
	return nil
}

// enrollTOTPConfirm is POST /v2/login/mfa/totp/confirm: turns the TOTP
// on and finishes the held-back sign-in.
func (s *Server) enrollTOTPConfirm(c *gin.Context) error {
	var in enrollConfirm
	token, err := s.enrollmentToken(c, &in, decodeJSON, &in.Token)
	if err != nil {
		return err
	}
	out, err := s.opts.MFA.ConfirmTOTP(ctxOf(c), auth.Principal{}, token, in.Code, service.OwnerProof{})
	if err != nil {
		return err
	}
	s.enrolledAnswer(c, out)
	return nil
}

// enrollPasskeyBegin is POST /v2/login/mfa/webauthn/register: the
// options to register a passkey for a held-back sign-in.
func (s *Server) enrollPasskeyBegin(c *gin.Context) error {
	var in mfaTokenBody
	token, err := s.enrollmentToken(c, &in, decodeOptionalJSON, &in.Token)
	if err != nil {
		return err
	}
	b, err := s.opts.MFA.BeginPasskeyRegistration(ctxOf(c), auth.Principal{}, token, service.OwnerProof{})
	if err != nil {
		return err
	}
	webAuthnAnswer(c, b)
	return nil
}

// enrollPasskeyFinish is POST /v2/login/mfa/webauthn/register/finish.
func (s *Server) enrollPasskeyFinish(c *gin.Context) error {
	var in service.PasskeyRegistration
	token, err := s.enrollmentToken(c, &in, decodeJSON, &in.Token)
	if err != nil {
		return err
	}
	in.Token = token
	out, err := s.opts.MFA.FinishPasskeyRegistration(ctxOf(c), auth.Principal{}, in)
	if err != nil {
		return err
	}
	s.enrolledAnswer(c, out)
	return nil
}

// enrollmentToken is what every step of a held-back sign-in's enrolment
// checks first: a same-origin request, its body decoded into in by
// decode, and the pending sign-in's token, from the body (fromBody, read
// after decoding) or the pending cookie.
func (s *Server) enrollmentToken(c *gin.Context, in any, decode func(*gin.Context, any) error, fromBody *string) (string, error) {
	if err := s.opts.Web.CheckOrigin(c.Request); err != nil {
		return "", err
	}
	if err := decode(c, in); err != nil {
		return "", err
	}
	token := s.mfaTokenOf(c, *fromBody)
	if token == "" {
		return "", apperr.InvalidParam("mfa_token", "mfa_token (from the sign-in's mfa_setup_required answer) is required.")
	}
	return token, nil
}

// enrolledAnswer is the sign-in's answer plus the recovery codes, shown
// once.
func (s *Server) enrolledAnswer(c *gin.Context, out service.MFAEnabled) {
	noStore(c)
	if out.Login == nil {
		c.JSON(http.StatusOK, gin.H{"recovery_codes": out.RecoveryCodes, "passkey": out.Passkey})
		return
	}
	res := *out.Login
	s.opts.Web.Enrolled(c.Writer, res)
	body := s.loginBody(res)
	body["recovery_codes"] = out.RecoveryCodes
	if out.Passkey != nil {
		body["passkey"] = out.Passkey
	}
	c.JSON(http.StatusOK, body)
}

// ---- the signed-in user's own factors ----

func (s *Server) mfaStatus(c *gin.Context) error {
	st, err := s.opts.MFA.MyMFA(ctxOf(c), PrincipalOf(c))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, st)
	return nil
}

func (s *Server) mfaTOTPSetup(c *gin.Context) error {
	if err := decodeOptionalJSON(c, &struct{}{}); err != nil {
		return err
	}
	out, err := s.opts.MFA.SetupTOTP(ctxOf(c), PrincipalOf(c), "")
	if err != nil {
		return err
	}
	noStore(c)
	c.JSON(http.StatusOK, out)
	return nil
}

func (s *Server) mfaTOTPConfirm(c *gin.Context) error {
	// code is the new app's; the proof that it is the user turning it on
	// is the password, or a current factor under its own names.
	var in struct {
		Code        string          `json:"code"`
		Password    string          `json:"password"`
		CurrentCode string          `json:"current_code"`
		Token       string          `json:"mfa_token"`
		WebAuthn    json.RawMessage `json:"webauthn"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	proof := service.OwnerProof{MFAProof: service.MFAProof{Code: in.CurrentCode, Token: in.Token, WebAuthn: in.WebAuthn}, Password: in.Password}
	out, err := s.opts.MFA.ConfirmTOTP(ctxOf(c), PrincipalOf(c), "", in.Code, proof)
	if err != nil {
		return err
	}
	noStore(c)
	c.JSON(http.StatusOK, gin.H{"enabled": true, "recovery_codes": out.RecoveryCodes})
	return nil
}

func (s *Server) mfaTOTPDisable(c *gin.Context) error {
	var in service.MFAProof
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := s.opts.MFA.DisableTOTP(ctxOf(c), PrincipalOf(c), in); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"totp": false, "message": "The authenticator app is turned off."})
	return nil
}

func (s *Server) mfaPasskeyBegin(c *gin.Context) error {
	var proof service.OwnerProof
	if err := decodeOptionalJSON(c, &proof); err != nil {
		return err
	}
	b, err := s.opts.MFA.BeginPasskeyRegistration(ctxOf(c), PrincipalOf(c), "", proof)
	if err != nil {
		return err
	}
	webAuthnAnswer(c, b)
	return nil
}

func (s *Server) mfaPasskeyFinish(c *gin.Context) error {
	var in service.PasskeyRegistration
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	out, err := s.opts.MFA.FinishPasskeyRegistration(ctxOf(c), PrincipalOf(c), in)
	if err != nil {
		return err
	}
	noStore(c)
	c.JSON(http.StatusOK, gin.H{"passkey": out.Passkey, "recovery_codes": out.RecoveryCodes})
	return nil
}

func (s *Server) mfaPasskeyDelete(c *gin.Context) error {
	var in struct {
		ID string `json:"id"`
		service.MFAProof
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.ID == "" {
		return apperr.InvalidParam("id", "id (the passkey's id from GET /user/mfa) is required.")
	}
	if err := s.opts.MFA.DeletePasskey(ctxOf(c), PrincipalOf(c), in.ID, in.MFAProof); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"deleted": in.ID})
	return nil
}

func (s *Server) mfaStepUp(c *gin.Context) error {
	if err := decodeOptionalJSON(c, &struct{}{}); err != nil {
		return err
	}
	b, err := s.opts.MFA.BeginMFAStepUp(ctxOf(c), PrincipalOf(c))
	if err != nil {
		return err
	}
	webAuthnAnswer(c, b)
	return nil
}

func (s *Server) mfaRecoveryCodes(c *gin.Context) error {
	var in service.MFAProof
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	codes, err := s.opts.MFA.RegenerateRecoveryCodes(ctxOf(c), PrincipalOf(c), in)
	if err != nil {
		return err
	}
	noStore(c)
	c.JSON(http.StatusOK, gin.H{"recovery_codes": codes})
	return nil
}

// mfaReset is POST /user/mfa/reset (admins): removes a user's second
// factors and ends their sessions.
func (s *Server) mfaReset(c *gin.Context) error {
	var in struct {
		UserID string `json:"user_id"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := s.opts.MFA.ResetMFA(ctxOf(c), PrincipalOf(c), in.UserID); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"user_id": in.UserID, "message": "Second factors removed; the user's sessions ended."})
	return nil
}
