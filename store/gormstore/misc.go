package gormstore

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/keygate/keygate/store"
)

// ---- signing keys ----

// The private_sealed column is NOT NULL; an absent sealed key is stored as
// empty bytes and read back as nil.
func signingKeyToRow(k store.SigningKey) signingKeyRow {
	sealed := k.PrivateSealed
	if sealed == nil {
		sealed = []byte{}
	}
	return signingKeyRow{
		KID: k.KID, Algorithm: k.Algorithm, PublicPEM: k.PublicPEM, PrivateSealed: sealed,
		CreatedAt: dbTime(k.CreatedAt), NotAfter: dbTime(k.NotAfter), VerifyUntil: dbTime(k.VerifyUntil),
	}
}

func rowToSigningKey(r signingKeyRow) store.SigningKey {
	if len(r.PrivateSealed) == 0 {
		r.PrivateSealed = nil
	}
	return store.SigningKey{
		KID: r.KID, Algorithm: r.Algorithm, PublicPEM: r.PublicPEM, PrivateSealed: r.PrivateSealed,
		CreatedAt: goTime(r.CreatedAt), NotAfter: goTime(r.NotAfter), VerifyUntil: goTime(r.VerifyUntil),
	}
}

// CreateSigningKey inserts k; ErrConflict on a duplicate kid.
func (s *Store) CreateSigningKey(ctx context.Context, k *store.SigningKey) error {
	if k.KID == "" {
		return errors.New("gormstore: create signing key: empty kid")
	}
	row := signingKeyToRow(*k)
	if err := s.conn(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("gormstore: create signing key %q: %w", k.KID, translate(err))
	}
	k.CreatedAt, k.NotAfter, k.VerifyUntil = row.CreatedAt, row.NotAfter, row.VerifyUntil
	return nil
}

// ListSigningKeys returns the keys still verifying at now, newest first.
func (s *Store) ListSigningKeys(ctx context.Context, now time.Time) ([]store.SigningKey, error) {
	var rows []signingKeyRow
	err := s.read(ctx).Where("verify_until > ?", dbTime(now)).Order("created_at DESC, kid DESC").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("gormstore: list signing keys: %w", translate(err))
	}
	out := make([]store.SigningKey, 0, len(rows))
	for _, r := range rows {
		out = append(out, rowToSigningKey(r))
	}
	return out, nil
}

// UpdateSigningKey applies fn and stores only NotAfter and VerifyUntil:
// the key material of a kid never changes. Errors from fn are returned
// unchanged.
func (s *Store) UpdateSigningKey(ctx context.Context, kid string, fn func(*store.SigningKey) error) (store.SigningKey, error) {
	var out store.SigningKey
	var fnErr error
	err := s.txn(ctx, func(tx *gorm.DB) error {
		var row signingKeyRow
		if err := forUpdate(tx).Where("kid = ?", kid).Take(&row).Error; err != nil {
			return err
		}
		k := rowToSigningKey(row)
		if fnErr = fn(&k); fnErr != nil {
			return fnErr
		}
		row.NotAfter, row.VerifyUntil = dbTime(k.NotAfter), dbTime(k.VerifyUntil)
		err := tx.Model(&signingKeyRow{}).Where("kid = ?", kid).
			UpdateColumns(map[string]any{"not_after": row.NotAfter, "verify_until": row.VerifyUntil}).Error
		if err != nil {
			return err
		}
		out = rowToSigningKey(row)
		return nil
	})
	if fnErr != nil {
		return store.SigningKey{}, fnErr
	}
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("gormstore: update signing key %q: %w", kid, translate(err))
	}
	return out, nil
}

// ---- login attempts ----
// Subjects ("account:<email>", "ip:<addr>") are personal data and stay
// out of error messages.

// RecordLoginFailure appends one failure of subject at at.
func (s *Store) RecordLoginFailure(ctx context.Context, subject string, at time.Time) error {
	if err := s.conn(ctx).Create(&loginFailureRow{Subject: subject, At: dbTime(at)}).Error; err != nil {
		return fmt.Errorf("gormstore: record login failure: %w", translate(err))
	}
	return nil
}

// CountLoginFailures counts subject's failures at or after since and
// returns the oldest of them (zero time when none).
func (s *Store) CountLoginFailures(ctx context.Context, subject string, since time.Time) (int64, time.Time, error) {
	n, oldest, err := countAttempts(s.read(ctx), subject, since)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("gormstore: count login failures: %w", translate(err))
	}
	return n, oldest, nil
}

func countAttempts(db *gorm.DB, subject string, since time.Time) (int64, time.Time, error) {
	scope := func() *gorm.DB {
		return db.Model(&loginFailureRow{}).Where("subject = ? AND at >= ?", subject, dbTime(since))
	}
	var n int64
	if err := scope().Count(&n).Error; err != nil {
		return 0, time.Time{}, err
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	// The oldest row is read as a row rather than with MIN(at): SQLite
	// returns an aggregate of a text-stored time as untyped text.
	var oldest loginFailureRow
	if err := scope().Order("at, id").Limit(1).Find(&oldest).Error; err != nil {
		return 0, time.Time{}, err
	}
	if oldest.ID == 0 { // cleared between the two reads
		return 0, time.Time{}, nil
	}
	return n, goTime(oldest.At), nil
}

// takeAttempt inserts the attempt only while the window holds fewer than
// limit: one statement, so SQLite (which runs it under its write lock)
// cannot interleave another taker between the count and the insert.
const takeAttempt = `INSERT INTO login_failures (subject, at)
SELECT ?, ? WHERE (SELECT COUNT(*) FROM login_failures WHERE subject = ? AND at >= ?) < ?`

// TakeLoginAttempt implements store.LoginAttempts. On PostgreSQL, where
// READ COMMITTED lets two concurrent INSERT ... SELECTs both see the old
// count, takers of one subject first queue on a transaction-scoped
// advisory lock, which every replica on the database shares.
//
// A window already full is refused from a read, before that queue (or
// SQLite's write lock): in a burst of guesses at one account, every
// request past the limit would otherwise hold a pooled connection while
// it waited, and fail with 503 once the wait passed the statement bound.
// Failures only leave the window by ageing out or being cleared, and a
// refusal read a moment early is still a refusal the limit allows.
func (s *Store) TakeLoginAttempt(ctx context.Context, subject string, at, since time.Time, limit int64) (store.AttemptWindow, error) {
	var out store.AttemptWindow
	n, oldest, err := countAttempts(s.read(ctx), subject, since)
	if err != nil {
		return store.AttemptWindow{}, fmt.Errorf("gormstore: take login attempt: %w", translate(err))
	}
	if n >= limit {
		return store.AttemptWindow{Count: n, Oldest: oldest}, nil
	}
	err = s.txn(ctx, func(tx *gorm.DB) error {
		if s.dialect == DialectPostgres {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(hashtext('keygate_login_attempts'), hashtext(?))", subject).Error; err != nil {
				return err
			}
		}
		// Forgetting first also makes this a write transaction from its
		// first statement on SQLite, so the count below cannot go stale.
		if err := tx.Where("subject = ? AND at < ?", subject, dbTime(since)).Delete(&loginFailureRow{}).Error; err != nil {
			return err
		}
		res := tx.Exec(takeAttempt, subject, dbTime(at), subject, dbTime(since), limit)
		if res.Error != nil {
			return res.Error
		}
		out.Taken = res.RowsAffected == 1
		var err error
		out.Count, out.Oldest, err = countAttempts(tx, subject, since)
		return err
	})
	if err != nil {
		return store.AttemptWindow{}, fmt.Errorf("gormstore: take login attempt: %w", translate(err))
	}
	return out, nil
}

// ClearLoginFailures forgets every failure of subject.
func (s *Store) ClearLoginFailures(ctx context.Context, subject string) error {
	if err := s.conn(ctx).Where("subject = ?", subject).Delete(&loginFailureRow{}).Error; err != nil {
		return fmt.Errorf("gormstore: clear login failures: %w", translate(err))
	}
	return nil
}

// ---- audit ----

// AppendAudit inserts e and sets e.ID (and normalises e.At).
func (s *Store) AppendAudit(ctx context.Context, e *store.AuditEvent) error {
	before, err := encodeMap(e.Before, "audit before")
	if err != nil {
		return fmt.Errorf("gormstore: append audit %q: %w", e.Action, err)
	}
	after, err := encodeMap(e.After, "audit after")
	if err != nil {
		return fmt.Errorf("gormstore: append audit %q: %w", e.Action, err)
	}
	row := auditRow{
		At: dbTime(e.At), Action: e.Action, ActorID: e.ActorID, ActorRole: e.ActorRole, TargetType: e.TargetType,
		TargetID: e.TargetID, ClientIP: e.ClientIP, RequestID: e.RequestID, Before: before, After: after,
	}
	if err := s.conn(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("gormstore: append audit %q: %w", e.Action, translate(err))
	}
	e.ID, e.At = row.ID, row.At
	return nil
}

// ListAudit returns one page ordered by (at, id), oldest first, and the
// total. Since is inclusive, Until exclusive.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, int64, error) {
	scope := func(q *gorm.DB) *gorm.DB {
		if f.Action != "" {
			q = q.Where("action = ?", f.Action)
		}
		if f.ActionPrefix != "" {
			// substr, not LIKE: exact and case-sensitive in both dialects.
			q = q.Where("substr(action, 1, ?) = ?", utf8.RuneCountInString(f.ActionPrefix), f.ActionPrefix)
		}
		if f.ActorID != "" {
			q = q.Where("actor_id = ?", f.ActorID)
		}
		if f.TargetID != "" {
			q = q.Where("target_id = ?", f.TargetID)
		}
		if f.Actor != "" {
			q = s.ownerOrEmail(q, "actor_id", f.Actor)
		}
		if f.Since != nil {
			q = q.Where("at >= ?", dbTime(*f.Since))
		}
		if f.Until != nil {
			q = q.Where("at < ?", dbTime(*f.Until))
		}
		return q
	}
	order := "at, id"
	if f.NewestFirst {
		order = "at DESC, id DESC"
	}
	rows, total, err := list(ctx, s, &auditRow{}, scope, order, f.Page)
	if err != nil {
		return nil, 0, fmt.Errorf("gormstore: list audit: %w", err)
	}
	out := make([]store.AuditEvent, 0, len(rows))
	for _, r := range rows {
		before, err := decodeMap(r.Before, "audit before")
		if err != nil {
			return nil, 0, fmt.Errorf("gormstore: list audit: %w", err)
		}
		after, err := decodeMap(r.After, "audit after")
		if err != nil {
			return nil, 0, fmt.Errorf("gormstore: list audit: %w", err)
		}
		out = append(out, store.AuditEvent{
			ID: r.ID, At: goTime(r.At), Action: r.Action, ActorID: r.ActorID, ActorRole: r.ActorRole,
			TargetType: r.TargetType, TargetID: r.TargetID, ClientIP: r.ClientIP, RequestID: r.RequestID,
			Before: before, After: after,
		})
	}
	return out, total, nil
}
