// Package mfa holds the mechanics of Keygate's second factors, free of
// storage and HTTP: TOTP secrets and codes (RFC 6238), recovery codes,
// and the WebAuthn relying party that registers and checks passkeys. The
// service layer decides when they are needed and stores what they make.
package mfa

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"image/png"
	"io"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters: RFC 6238's defaults, the only ones every authenticator
// app implements (SHA-1, 6 digits, 30 s), accepting the step before and
// after the current one for clock drift.
const (
	TOTPPeriod  = 30
	TOTPDigits  = 6
	totpSkew    = 1
	totpSecret  = 20 // bytes: the RFC 4226 recommended 160 bits
	qrImageSize = 256
)

// TOTPSetup is a new secret as an authenticator app takes it.
type TOTPSetup struct {
	// Secret is the base32 secret (for typing into an app).
	Secret string
	// URI is the otpauth:// URI the QR code encodes.
	URI string
	// QRPNG is the QR code of URI as a PNG.
	QRPNG []byte
}

// QRPNGBase64 is the QR code for a JSON answer or a data: URL.
func (s TOTPSetup) QRPNGBase64() string { return base64.StdEncoding.EncodeToString(s.QRPNG) }

// NewTOTP makes a random secret for account (the user's e-mail) under
// issuer ("Keygate"), read from rand.
func NewTOTP(issuer, account string, rand io.Reader) (TOTPSetup, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: TOTPPeriod, SecretSize: totpSecret,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Rand: rand})
	if err != nil {
		return TOTPSetup{}, fmt.Errorf("mfa: totp secret: %w", err)
	}
	img, err := key.Image(qrImageSize, qrImageSize)
	if err != nil {
		return TOTPSetup{}, fmt.Errorf("mfa: totp qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return TOTPSetup{}, fmt.Errorf("mfa: totp qr code: %w", err)
	}
	return TOTPSetup{Secret: key.Secret(), URI: key.URL(), QRPNG: buf.Bytes()}, nil
}

// TOTPStep is the RFC 6238 time step of t.
func TOTPStep(t time.Time) int64 { return t.Unix() / TOTPPeriod }

// TOTPCode is the code of secret for step (tests, and the one-call
// login of scripts that compute their own code).
func TOTPCode(secret string, step int64) (string, error) {
	code, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", fmt.Errorf("mfa: totp code: %w", err)
	}
	return code, nil
}

// CheckTOTP reports whether code is the code of secret for the step of
// now or the one before or after, and which step it matched: the caller
// accepts each step at most once (replay). Every candidate is computed
// and compared in constant time.
func CheckTOTP(secret, code string, now time.Time) (step int64, ok bool) {
	code = NormalizeCode(code)
	if !LooksLikeTOTP(code) {
		return 0, false
	}
	cur := TOTPStep(now)
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		want, err := TOTPCode(secret, cur+d)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !ok {
			step, ok = cur+d, true
		}
	}
	return step, ok
}

// LooksLikeTOTP reports whether a normalised code has a TOTP code's shape
// (six digits), as opposed to a recovery code's.
func LooksLikeTOTP(code string) bool {
	if len(code) != TOTPDigits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// NormalizeCode drops what people type around a code: spaces, dashes and
// case.
func NormalizeCode(code string) string {
	if len(code) > 64 {
		return ""
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return r
	}, code)
}
