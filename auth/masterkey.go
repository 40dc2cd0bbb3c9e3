package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"

	"github.com/keygate/keygate/rbac"
)

// MasterKey authenticates the operator's master key. Only its SHA-256 is
// kept, so the raw key is not in memory after start-up, and the comparison
// is constant-time.
type MasterKey struct {
	hash [sha256.Size]byte
	set  bool
}

// NewMasterKey returns an authenticator for the master key whose SHA-256
// is hash. A zero hash disables it.
func NewMasterKey(hash [sha256.Size]byte) *MasterKey {
	var zero [sha256.Size]byte
	return &MasterKey{hash: hash, set: hash != zero}
}

// Is reports, in constant time, whether raw is the master key.
func (m *MasterKey) Is(raw string) bool {
	h := sha256.Sum256([]byte(raw))
	return m.set && subtle.ConstantTimeCompare(h[:], m.hash[:]) == 1
}

// Authenticate implements Authenticator. A credential that is not the
// master key is not this authenticator's business (ErrNotMine), so the
// chain goes on to API keys and sessions.
func (m *MasterKey) Authenticate(_ context.Context, c Credential) (Principal, error) {
	if !m.set || c.FromCookie {
		return Principal{}, ErrNotMine
	}
	h := c.SHA256()
	if subtle.ConstantTimeCompare(h[:], m.hash[:]) != 1 {
		return Principal{}, ErrNotMine
	}
	return Principal{Method: MethodMasterKey, Role: rbac.RoleProxyAdmin}, nil
}
