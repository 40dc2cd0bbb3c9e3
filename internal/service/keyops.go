package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/apikey"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// keyHashOf turns a key reference (raw key or its SHA-256 hex) into the
// stored hash.
func keyHashOf(ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", apperr.InvalidParam("key", "key is required.")
	}
	if apikey.IsHash(ref) {
		return ref, nil
	}
	if _, err := apikey.Parse(ref); err != nil {
		return "", apperr.InvalidParam("key", "key must be an API key (sk-...) or its SHA-256 hash.")
	}
	return apikey.Hash(ref), nil
}

func (s *Service) loadKey(ctx context.Context, st store.Store, ref string) (store.Key, error) {
	h, err := keyHashOf(ref)
	if err != nil {
		return store.Key{}, err
	}
	k, err := st.GetKey(ctx, h)
	if err != nil {
		return store.Key{}, notFound(err, "Key not found.")
	}
	return k, nil
}

// isTeamAdmin reports whether p administers team teamID.
func isTeamAdmin(ctx context.Context, st store.Store, p auth.Principal, teamID string) (bool, error) {
	if teamID == "" || p.UserID == "" {
		return false, nil
	}
	m, err := st.GetMembership(ctx, teamID, p.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("service: check team admin: %w", err)
	}
	return m.Role == string(rbac.TeamRoleAdmin), nil
}

// keyOp is what a caller wants to do to an existing key.
type keyOp int

const (
	// opUpdate changes a key's fields; opRegenerate also hands out a new
	// raw value. Both are for the key's owner and proxy admins only: a raw
	// key acts as its owner, so nobody else may ever receive one, and
	// reshaping someone else's key is the owner's or an admin's business.
	opUpdate keyOp = iota
	opRegenerate
	// opDelete and opBlock may also be done by an admin of the key's team
	// to a member's team key (never to the key of someone whose role is
	// above theirs, never to an ownerless key).
	opDelete
	opBlock
)

// mayWriteKey decides whether p may do op to k.
func mayWriteKey(ctx context.Context, st store.Store, p auth.Principal, k store.Key, op keyOp) error {
	if p.Can(rbac.PermKeyWriteAny) {
		return nil
	}
	if !p.Can(rbac.PermKeyWriteOwn) {
		return forbidden(p, rbac.PermKeyWriteOwn)
	}
	own := p.UserID != "" && k.UserID == p.UserID
	if own && op != opBlock {
		return nil
	}
	if op == opDelete || op == opBlock {
		ok, err := mayManageTeamKey(ctx, st, p, k)
		if err != nil || ok {
			return err
		}
	}
	switch {
	case own:
		return apperr.Forbidden("Only a proxy admin or an admin of the key's team can block or unblock keys.")
	case op == opRegenerate:
		return apperr.Forbidden("Only the key's owner or a proxy admin can regenerate a key: a new key value acts as its owner.")
	case op == opUpdate:
		return apperr.Forbidden("Only the key's owner or a proxy admin can change a key.")
	}
	return apperr.Forbidden("You are not authorized to change this key: it belongs to another user.")
}

// mayManageTeamKey: p administers k's team, k has an owner who is a
// member of it, and that owner's role is not above p's.
func mayManageTeamKey(ctx context.Context, st store.Store, p auth.Principal, k store.Key) (bool, error) {
	if k.TeamID == "" || k.UserID == "" {
		return false, nil
	}
	admin, err := isTeamAdmin(ctx, st, p, k.TeamID)
	if err != nil || !admin {
		return false, err
	}
	if _, err := st.GetMembership(ctx, k.TeamID, k.UserID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("service: check membership: %w", err)
	}
	owner, err := st.GetUser(ctx, k.UserID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("service: read key owner: %w", err)
	}
	return !outranks(owner, p), nil
}

// mayReadKey: admins and admin viewers any key; the key itself; its owner;
// admins of its team.
func mayReadKey(ctx context.Context, st store.Store, p auth.Principal, k store.Key) error {
	if p.Can(rbac.PermReadAll) || (p.KeyHash != "" && p.KeyHash == k.Hash) {
		return nil
	}
	if p.Can(rbac.PermReadOwn) {
		if p.UserID != "" && k.UserID == p.UserID {
			return nil
		}
		ok, err := mayManageTeamKey(ctx, st, p, k)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	return apperr.Forbidden("You are not authorized to view this key.")
}

// KeyInfo returns a key the principal may see. An empty ref means the
// calling key itself.
func (s *Service) KeyInfo(ctx context.Context, p auth.Principal, ref string) (store.Key, error) {
	if err := require(p, rbac.PermKeySelf); err != nil {
		return store.Key{}, err
	}
	if ref == "" {
		if p.KeyHash == "" {
			return store.Key{}, apperr.InvalidParam("key", "key is required unless you call with an API key.")
		}
		ref = p.KeyHash
	}
	k, err := s.loadKey(ctx, s.store, ref)
	if err != nil {
		return store.Key{}, err
	}
	if err := mayReadKey(ctx, s.store, p, k); err != nil {
		return store.Key{}, err
	}
	return k, nil
}

// KeyListInput filters ListKeys.
type KeyListInput struct {
	UserID   string
	TeamID   string
	KeyHash  string
	KeyAlias string
	// Owner matches the owner's id or part of their e-mail (admins and
	// admin viewers only, like listing others' keys).
	Owner string
	Page  int
	Size  int
	// Order: store.OrderCreated, OrderAlias, OrderSpend or OrderLastUsed
	// ("" = oldest first); anything else is 400.
	Order store.Order
}

// ListKeys lists keys: admins and admin viewers any, everyone else only
// their own (a user_id filter naming someone else is 403, never widened).
func (s *Service) ListKeys(ctx context.Context, p auth.Principal, in KeyListInput) ([]store.Key, int64, error) {
	if err := require(p, rbac.PermReadOwn); err != nil {
		return nil, 0, err
	}
	pg, err := pageOf(in.Page, in.Size, 10)
	if err != nil {
		return nil, 0, err
	}
	if err := validOrder(in.Order, store.OrderCreated, store.OrderAlias, store.OrderSpend, store.OrderLastUsed); err != nil {
		return nil, 0, err
	}
	if len(in.Owner) > maxIDLen {
		return nil, 0, apperr.InvalidParam("owner", "owner is too long.")
	}
	if !p.Can(rbac.PermReadAll) {
		if in.Owner != "" {
			return nil, 0, apperr.Forbidden("You can only list your own keys.")
		}
		teamAdmin := false
		if in.TeamID != "" && in.UserID == "" {
			if teamAdmin, err = isTeamAdmin(ctx, s.store, p, in.TeamID); err != nil {
				return nil, 0, err
			}
		}
		switch {
		case teamAdmin:
			// An admin of the team lists the team keys they manage.
			return s.listManagedTeamKeys(ctx, p, in, pg)
		case in.UserID != "" && in.UserID != p.UserID:
			return nil, 0, apperr.Forbidden("You can only list your own keys.")
		default:
			in.UserID = p.UserID
			if in.UserID == "" {
				return nil, 0, nil
			}
		}
	}
	keys, total, err := s.store.ListKeys(ctx, store.KeyFilter{UserID: in.UserID, TeamID: in.TeamID, KeyHash: in.KeyHash, KeyAlias: in.KeyAlias,
		Owner: in.Owner, Page: pg, Order: in.Order})
	if err != nil {
		return nil, 0, fmt.Errorf("service: list keys: %w", err)
	}
	return keys, total, nil
}

// maxTeamKeysListed bounds a team admin's listing, which is filtered key
// by key (who may manage which key is not a column).
const maxTeamKeysListed = 1000

// listManagedTeamKeys lists, for an admin of in.TeamID, the team keys they
// may manage (mayManageTeamKey): never ownerless keys nor keys of members
// whose role is above theirs.
func (s *Service) listManagedTeamKeys(ctx context.Context, p auth.Principal, in KeyListInput, pg store.Page) ([]store.Key, int64, error) {
	all, _, err := s.store.ListKeys(ctx, store.KeyFilter{TeamID: in.TeamID, KeyHash: in.KeyHash, KeyAlias: in.KeyAlias,
		Page: store.Page{Limit: maxTeamKeysListed}})
	if err != nil {
		return nil, 0, fmt.Errorf("service: list keys: %w", err)
	}
	var mine []store.Key
	for _, k := range all {
		ok, err := mayManageTeamKey(ctx, s.store, p, k)
		if err != nil {
			return nil, 0, err
		}
		if ok || k.UserID == p.UserID {
			mine = append(mine, k)
		}
	}
	total := int64(len(mine))
	lo := min(pg.Offset, len(mine))
	hi := min(lo+pg.Limit, len(mine))
	return mine[lo:hi], total, nil
}

// UpdateKey changes a key. Non-admins cannot reassign it, block it, move it
// to a team they are not in, or widen it beyond its owner's limits.
func (s *Service) UpdateKey(ctx context.Context, p auth.Principal, ref string, in KeyRequest) (store.Key, error) {
	if err := require(p, rbac.PermKeyWriteOwn); err != nil {
		return store.Key{}, err
	}
	if err := s.validKeyRequest(&in); err != nil {
		return store.Key{}, err
	}
	if in.Key != nil && ref == "" {
		ref = *in.Key
	}
	var out store.Key
	err := s.tx(ctx, func(tx store.Store, ch *Changes) error {
		k, err := s.loadKey(ctx, tx, ref)
		if err != nil {
			return err
		}
		out, err = s.applyKeyUpdate(ctx, tx, p, k, k.Hash, in, "key.updated")
		ch.Key(k.Hash)
		return err
	})
	if err != nil {
		return store.Key{}, err
	}
	return out, nil
}

// applyKeyUpdate authorizes and writes in's changes to k, under newHash
// (the same hash for updates, a fresh one for regeneration).
func (s *Service) applyKeyUpdate(ctx context.Context, tx store.Store, p auth.Principal, k store.Key, newHash string, in KeyRequest, action string) (store.Key, error) {
	op := opUpdate
	if newHash != k.Hash {
		op = opRegenerate
	}
	if err := mayWriteKey(ctx, tx, p, k, op); err != nil {
		return store.Key{}, err
	}
	admin := p.Can(rbac.PermKeyWriteAny)
	if !admin {
		if in.UserID != nil && *in.UserID != k.UserID {
			return store.Key{}, apperr.Forbidden("Only a proxy admin can give a key to another user.")
		}
		if in.Blocked != nil && *in.Blocked != k.Blocked {
			return store.Key{}, apperr.Forbidden("Only a proxy admin can block or unblock keys.")
		}
		if in.KeyType != nil && (*in.KeyType == rbac.KeyTypeService || *in.KeyType == rbac.KeyTypeSCIM) {
			return store.Key{}, apperr.Forbidden("Only a proxy admin can create %s keys.", *in.KeyType)
		}
		if in.NewKey != nil {
			return store.Key{}, apperr.Forbidden("Only a proxy admin can choose a key's value.")
		}
	}
	now := s.Now()
	next := k
	if in.KeyAlias != nil {
		next.Alias = *in.KeyAlias
	}
	if in.Duration != nil {
		next.ExpiresAt = expiryOf(now, in.Duration)
	}
	if in.Models != nil {
		next.Models = in.Models
	}
	if in.AllowedRoutes != nil {
		next.AllowedRoutes = in.AllowedRoutes
	}
	if in.MaxBudget != nil {
		next.MaxBudget = in.MaxBudget
	}
	if in.BudgetDuration != nil {
		next.BudgetDuration = *in.BudgetDuration
		next.BudgetResetAt = nil
		if *in.BudgetDuration != "" {
			d, _ := ParseDuration(*in.BudgetDuration)
			reset := now.Add(d)
			next.BudgetResetAt = &reset
		}
	}
	if in.TeamID != nil {
		next.TeamID = *in.TeamID
	}
	if in.UserID != nil {
		next.UserID = *in.UserID
	}
	if in.Metadata != nil {
		next.Metadata = in.Metadata
	}
	if in.KeyType != nil {
		next.KeyType = *in.KeyType
	}
	if in.TPMLimit != nil {
		next.TPMLimit = in.TPMLimit
	}
	if in.RPMLimit != nil {
		next.RPMLimit = in.RPMLimit
	}
	if in.Blocked != nil {
		next.Blocked = *in.Blocked
	}
	if err := s.checkKeyScope(ctx, tx, p, admin, next); err != nil {
		return store.Key{}, err
	}
	next.UpdatedAt = now
	apply := func(dst *store.Key) error {
		hash, keyName, created, createdBy, spend, last := dst.Hash, next.KeyName, dst.CreatedAt, dst.CreatedBy, dst.Spend, dst.LastActive
		*dst = next
		dst.Hash, dst.KeyName, dst.CreatedAt, dst.CreatedBy, dst.Spend, dst.LastActive = hash, keyName, created, createdBy, spend, last
		return nil
	}
	var out store.Key
	var err error
	if newHash == k.Hash {
		out, err = tx.UpdateKey(ctx, k.Hash, apply)
	} else {
		out, err = tx.ReplaceKeyHash(ctx, k.Hash, newHash, apply)
	}
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.Key{}, apperr.Conflict("A key with this key_alias (or value) already exists.").Wrap(err)
		}
		return store.Key{}, notFound(err, "Key not found.")
	}
	if err := s.audit(ctx, tx, p, action, "key", out.Hash, keySummary(k), keySummary(out)); err != nil {
		return store.Key{}, err
	}
	return out, nil
}

// RegenerateKey replaces a key's secret: the old value stops working at
// once, the record (spend, limits, owner) carries over, and optional fields
// in `in` are applied as by UpdateKey.
func (s *Service) RegenerateKey(ctx context.Context, p auth.Principal, ref string, in KeyRequest) (IssuedKey, error) {
	if err := require(p, rbac.PermKeyWriteOwn); err != nil {
		return IssuedKey{}, err
	}
	if err := s.validKeyRequest(&in); err != nil {
		return IssuedKey{}, err
	}
	if ref == "" && in.Key != nil {
		ref = *in.Key
	}
	in.Key = nil
	raw := ""
	if in.NewKey != nil {
		raw = *in.NewKey
	} else {
		var err error
		if raw, err = apikey.Generate(randReader{s.rand}); err != nil {
			return IssuedKey{}, fmt.Errorf("service: generate key: %w", err)
		}
	}
	var out store.Key
	err := s.tx(ctx, func(tx store.Store, ch *Changes) error {
		k, err := s.loadKey(ctx, tx, ref)
		if err != nil {
			return err
		}
		ch.Key(k.Hash, apikey.Hash(raw))
		out, err = s.applyKeyUpdate(ctx, tx, p, k, apikey.Hash(raw), in, "key.regenerated")
		if err != nil {
			return err
		}
		out, err = tx.UpdateKey(ctx, out.Hash, func(k *store.Key) error { k.KeyName = apikey.KeyName(raw); return nil })
		return err
	})
	if err != nil {
		return IssuedKey{}, err
	}
	return IssuedKey{Key: out, Raw: raw}, nil
}

// SetKeyBlocked blocks or unblocks a key: proxy admins any key, team
// admins their members' team keys.
func (s *Service) SetKeyBlocked(ctx context.Context, p auth.Principal, ref string, blocked bool) (store.Key, error) {
	if err := require(p, rbac.PermKeyWriteOwn); err != nil {
		return store.Key{}, err
	}
	var out store.Key
	err := s.tx(ctx, func(tx store.Store, ch *Changes) error {
		k, err := s.loadKey(ctx, tx, ref)
		if err != nil {
			return err
		}
		if err := mayWriteKey(ctx, tx, p, k, opBlock); err != nil {
			return err
		}
		ch.Key(k.Hash)
		out, err = tx.UpdateKey(ctx, k.Hash, func(k *store.Key) error { k.Blocked = blocked; k.UpdatedAt = s.Now(); return nil })
		if err != nil {
			return notFound(err, "Key not found.")
		}
		action := "key.unblocked"
		if blocked {
			action = "key.blocked"
		}
		return s.audit(ctx, tx, p, action, "key", k.Hash, keySummary(k), keySummary(out))
	})
	if err != nil {
		return store.Key{}, err
	}
	return out, nil
}

// keyByAlias finds the key an alias names for p. Aliases are unique per
// owner, so the caller's own key of that name comes first; otherwise the
// name must be unambiguous (an admin names another's key by its value
// when several owners use the name).
func keyByAlias(ctx context.Context, tx store.Store, p auth.Principal, alias string) (store.Key, error) {
	none := apperr.NotFound("No key of yours is named %q.", truncate(alias, 80))
	if p.UserID != "" {
		k, err := tx.GetKeyByAlias(ctx, p.UserID, alias)
		if err == nil || !errors.Is(err, store.ErrNotFound) {
			return k, err
		}
	}
	// Other owners' names are looked at only by those who may see every
	// key: to anyone else another user's key name must not answer
	// differently from a name nobody uses.
	if !p.Can(rbac.PermReadAll) || alias == "" {
		return store.Key{}, none
	}
	ks, n, err := tx.ListKeys(ctx, store.KeyFilter{KeyAlias: alias, Page: store.Page{Limit: 2}})
	switch {
	case err != nil:
		return store.Key{}, fmt.Errorf("service: key by alias: %w", err)
	case n == 0:
		return store.Key{}, apperr.NotFound("No key with alias %q.", truncate(alias, 80))
	case n > 1:
		return store.Key{}, apperr.Conflict("%d keys of different owners are named %q; name the key by its value or hash.", n, truncate(alias, 80))
	}
	return ks[0], nil
}

// DeleteKeys deletes keys named by value/hash or by alias. All-or-nothing:
// an unknown key is 404 and a key the caller may not delete is 403, and in
// either case nothing is deleted.
func (s *Service) DeleteKeys(ctx context.Context, p auth.Principal, refs, aliases []string) error {
	if err := require(p, rbac.PermKeyWriteOwn); err != nil {
		return err
	}
	if len(refs)+len(aliases) == 0 {
		return apperr.InvalidParam("keys", "keys or key_aliases must name at least one key.")
	}
	if len(refs)+len(aliases) > 1000 {
		return apperr.InvalidParam("keys", "At most 1000 keys can be deleted at once.")
	}
	err := s.tx(ctx, func(tx store.Store, ch *Changes) error {
		var keys []store.Key
		named := map[string]bool{}
		add := func(k store.Key) {
			if !named[k.Hash] { // the same key named twice is deleted once
				named[k.Hash] = true
				keys = append(keys, k)
			}
		}
		for _, r := range refs {
			k, err := s.loadKey(ctx, tx, r)
			if err != nil {
				return err
			}
			add(k)
		}
		for _, a := range aliases {
			k, err := keyByAlias(ctx, tx, p, a)
			if err != nil {
				return err
			}
			add(k)
		}
		for _, k := range keys {
			if err := mayWriteKey(ctx, tx, p, k, opDelete); err != nil {
				return apperr.Forbidden("You are not authorized to delete this key; nothing was deleted.").Wrap(err)
			}
		}
		for _, k := range keys {
			if err := tx.DeleteKey(ctx, k.Hash); err != nil {
				// Gone since it was read: deleted or regenerated by a
				// request that committed meanwhile. Saying "deleted"
				// would hide that a regenerated successor still works.
				return notFound(err, "Key %s was deleted or regenerated meanwhile; nothing was deleted.", k.KeyName)
			}
			ch.Key(k.Hash)
			if err := s.audit(ctx, tx, p, "key.deleted", "key", k.Hash, keySummary(k), nil); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}
