package mfa

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// ErrAssertion is every failed WebAuthn verification: a bad signature,
// another origin, an unknown credential, a replayed challenge. The
// library's detail stays in the wrapped error for logs.
var ErrAssertion = errors.New("mfa: passkey verification failed")

// RP is Keygate as a WebAuthn relying party. Its id and origin come from
// the configured public base URL (PROXY_BASE_URL), never from a request:
// a passkey is bound to that host, so a look-alike site cannot use it.
type RP struct {
	wa     *webauthn.WebAuthn
	origin string
}

// NewRP makes the relying party of baseURL. Browsers refuse an IP address
// as a relying party id, so passkeys need a host name (localhost works
// for local use).
func NewRP(baseURL, displayName string) (*RP, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return nil, fmt.Errorf("mfa: passkeys need an absolute http(s) base URL, got %q", baseURL)
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil {
		return nil, fmt.Errorf("mfa: passkeys need a host name, not the IP address %s, in the base URL (PROXY_BASE_URL)", host)
	}
	origin := u.Scheme + "://" + strings.ToLower(u.Host)
	wa, err := webauthn.New(&webauthn.Config{RPID: host, RPDisplayName: displayName, RPOrigins: []string{origin},
		AttestationPreference: protocol.PreferNoAttestation})
	if err != nil {
		return nil, fmt.Errorf("mfa: webauthn: %w", err)
	}
	return &RP{wa: wa, origin: origin}, nil
}

// ID is the relying party id (the base URL's host).
func (rp *RP) ID() string { return rp.wa.Config.RPID }

// User is an account as the relying party sees it.
type User struct {
	ID          string // Keygate's user id
	Name        string // e-mail, shown by the authenticator
	DisplayName string
	Credentials []webauthn.Credential
}

var _ webauthn.User = User{}

// UserHandle is the WebAuthn user id of a Keygate user: SHA-256 of the
// user id, so no e-mail or id reaches the authenticator and it needs no
// storage.
func UserHandle(userID string) []byte {
	h := sha256.Sum256([]byte("keygate-webauthn-user-v1\x00" + userID))
	return h[:]
}

// WebAuthnID implements webauthn.User.
func (u User) WebAuthnID() []byte { return UserHandle(u.ID) }

// WebAuthnName implements webauthn.User.
func (u User) WebAuthnName() string { return u.Name }

// WebAuthnDisplayName implements webauthn.User.
func (u User) WebAuthnDisplayName() string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return u.Name
}

// WebAuthnCredentials implements webauthn.User.
func (u User) WebAuthnCredentials() []webauthn.Credential { return u.Credentials }

// Ceremony is a begun registration or assertion: Options go to the
// browser (navigator.credentials.create/get), State stays on the server
// until the answer comes back.
type Ceremony struct {
	Options json.RawMessage
	State   string
}

func ceremony(options any, state *webauthn.SessionData) (Ceremony, error) {
	o, err := json.Marshal(options)
	if err != nil {
		return Ceremony{}, fmt.Errorf("mfa: encode webauthn options: %w", err)
	}
	s, err := json.Marshal(state)
	if err != nil {
		return Ceremony{}, fmt.Errorf("mfa: encode webauthn state: %w", err)
	}
	return Ceremony{Options: o, State: string(s)}, nil
}

func decodeState(state string) (webauthn.SessionData, error) {
	var sd webauthn.SessionData
	if err := json.Unmarshal([]byte(state), &sd); err != nil || sd.Challenge == "" {
		return webauthn.SessionData{}, fmt.Errorf("%w: no ceremony was begun", ErrAssertion)
	}
	return sd, nil
}

// BeginRegistration starts registering a passkey for u. Its existing
// credentials are excluded (one authenticator, one passkey per account);
// a discoverable credential is preferred so it can also sign in alone.
func (rp *RP) BeginRegistration(u User) (Ceremony, error) {
	opts, state, err := rp.wa.BeginRegistration(u,
		webauthn.WithExclusions(webauthn.Credentials(u.Credentials).CredentialDescriptors()),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{ResidentKey: protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationPreferred}))
	if err != nil {
		return Ceremony{}, fmt.Errorf("mfa: begin registration: %w", err)
	}
	return ceremony(opts, state)
}

// FinishRegistration verifies the browser's answer to a registration and
// returns the new credential.
func (rp *RP) FinishRegistration(u User, state string, response []byte) (*webauthn.Credential, error) {
	sd, err := decodeState(state)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAssertion, err)
	}
	cred, err := rp.wa.CreateCredential(u, sd, parsed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAssertion, err)
	}
	return cred, nil
}

// BeginLogin starts an assertion with one of u's passkeys, as a second
// factor after the password.
func (rp *RP) BeginLogin(u User) (Ceremony, error) {
	opts, state, err := rp.wa.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return Ceremony{}, fmt.Errorf("mfa: begin login: %w", err)
	}
	return ceremony(opts, state)
}

// BeginPasswordless starts an assertion with any discoverable passkey of
// this site. The authenticator must verify the user (PIN or biometrics):
// the passkey is then the only factor asked for, and counts as two.
func (rp *RP) BeginPasswordless() (Ceremony, error) {
	opts, state, err := rp.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return Ceremony{}, fmt.Errorf("mfa: begin passwordless login: %w", err)
	}
	return ceremony(opts, state)
}

// Assertion is a parsed answer to BeginLogin or BeginPasswordless.
type Assertion struct {
	parsed *protocol.ParsedCredentialAssertionData
	// CredentialID names the passkey used (base64url), for looking up its
	// owner in a passwordless sign-in.
	CredentialID string
	// UserHandle is what the authenticator stored as the user id.
	UserHandle []byte
}

// ParseAssertion reads the browser's answer.
func ParseAssertion(response []byte) (Assertion, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return Assertion{}, fmt.Errorf("%w: %w", ErrAssertion, err)
	}
	return Assertion{parsed: parsed, CredentialID: CredentialID(parsed.RawID), UserHandle: parsed.Response.UserHandle}, nil
}

// FinishLogin verifies an assertion against u's credentials and the
// ceremony state, and returns the credential with its counter and flags
// updated. A signature counter that went backwards (a cloned
// authenticator) is refused.
func (rp *RP) FinishLogin(u User, state string, a Assertion) (*webauthn.Credential, error) {
	sd, err := decodeState(state)
	if err != nil {
		return nil, err
	}
	var cred *webauthn.Credential
	if len(sd.UserID) == 0 {
		_, cred, err = rp.wa.ValidatePasskeyLogin(func(_, _ []byte) (webauthn.User, error) { return u, nil }, sd, a.parsed)
	} else {
		cred, err = rp.wa.ValidateLogin(u, sd, a.parsed)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAssertion, err)
	}
	if cred.Authenticator.CloneWarning {
		return nil, fmt.Errorf("%w: the signature counter went backwards (cloned authenticator?)", ErrAssertion)
	}
	return cred, nil
}

// UserVerified reports whether the authenticator verified the user in
// this assertion (PIN, biometrics).
func (a Assertion) UserVerified() bool {
	return a.parsed != nil && a.parsed.Response.AuthenticatorData.Flags.HasUserVerified()
}

// CredentialID is the base64url form of a raw credential id.
func CredentialID(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }

// Method is a passkey's RFC 8176 method: a credential that may be synced
// between devices (backup eligible) is a software-secured key, "swk"; a
// device-bound one is hardware-secured, "hwk".
func Method(c webauthn.Credential) string {
	if c.Flags.BackupEligible {
		return "swk"
	}
	return "hwk"
}
