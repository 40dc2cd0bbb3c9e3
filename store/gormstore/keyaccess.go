package gormstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keygate/keygate/store"
)

// keyAccessQuery reads a key, its owner, its team and the owner's
// memberships in one statement: one row per membership (at least one row,
// thanks to the LEFT JOINs). Columns are listed, never "*", so columns
// added later do not change what is scanned.
const keyAccessQuery = `SELECT
 k.hash, k.alias, k.user_id, k.team_id, k.models, k.allowed_routes, k.max_budget, k.budget_reset_at, k.spend,
 k.tpm_limit, k.rpm_limit, k.blocked, k.expires_at, k.key_type,
 u.id, u.email, u.role, u.models, u.max_budget, u.budget_reset_at, u.spend, u.disabled, u.tpm_limit, u.rpm_limit,
 t.id, t.models, t.max_budget, t.budget_reset_at, t.spend, t.blocked, t.tpm_limit, t.rpm_limit,
 m.team_id, m.max_budget_in_team, m.spend
FROM api_keys k
LEFT JOIN users u ON u.id = k.user_id AND k.user_id <> ''
LEFT JOIN teams t ON t.id = k.team_id AND k.team_id <> ''
LEFT JOIN memberships m ON m.user_id = u.id
WHERE k.hash = $1`

// keyAccessManyQuery is keyAccessQuery for several keys (PostgreSQL).
var keyAccessManyQuery = strings.Replace(keyAccessQuery, "k.hash = $1", "k.hash = ANY($1)", 1)

// GetKeyAccess implements store.Keys. It bypasses GORM (reflection and
// callbacks cost more than the query on the hot path). Outside a
// transaction it runs, on PostgreSQL, through pgx and the batcher
// (keyaccess_pgx.go, keyaccess_batch.go), on SQLite as a statement
// prepared once per store.
func (s *Store) GetKeyAccess(ctx context.Context, hash string) (store.KeyAccess, error) {
	if !s.inTx && !isUnbounded(ctx) {
		// The same bound as every statement GORM runs (timeout.go): this
		// one bypasses GORM's callbacks.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout+s.acquireTimeout)
		defer cancel()
	}
	if s.keyAccessBatch != nil && !s.inTx {
		out, err := s.keyAccessBatch.get(ctx, hash)
		if err == nil || errors.Is(err, store.ErrNotFound) {
			// The database answered. Lookups bypass GORM's callbacks, and a
			// replica serving only /auth/verify runs nothing else: without
			// this, a listener that lost its connection would wait out its
			// backoff while other replicas' invalidations go unheard.
			s.databaseAnswered()
		}
		if err != nil {
			return store.KeyAccess{}, fmt.Errorf("gormstore: get key access: %w", translate(err))
		}
		return out, nil
	}
	rows, err := s.queryKeyAccess(ctx, hash)
	if err != nil {
		return store.KeyAccess{}, fmt.Errorf("gormstore: get key access: %w", translate(err))
	}
	defer func() { _ = rows.Close() }() // read to the end; Err reports what matters
	var out store.KeyAccess
	n := 0
	for rows.Next() {
		var r keyAccessRow
		if err := rows.Scan(r.dest()...); err != nil {
			return store.KeyAccess{}, fmt.Errorf("gormstore: get key access: scan: %w", translate(err))
		}
		if n == 0 {
			if out, err = r.access(); err != nil {
				return store.KeyAccess{}, fmt.Errorf("gormstore: get key access: %w", err)
			}
		}
		if r.mTeam.Valid {
			out.Memberships = append(out.Memberships, store.Membership{TeamID: r.mTeam.String, UserID: out.Key.UserID,
				MaxBudgetInTeam: floatPtr(r.mMax), Spend: r.mSpend.Float64})
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return store.KeyAccess{}, fmt.Errorf("gormstore: get key access: %w", translate(err))
	}
	if n == 0 {
		return store.KeyAccess{}, fmt.Errorf("gormstore: get key access: %w", store.ErrNotFound)
	}
	return out, nil
}

func (s *Store) queryKeyAccess(ctx context.Context, hash string) (*sql.Rows, error) {
	q := keyAccessQuery
	if s.dialect != DialectPostgres {
		q = strings.Replace(q, "$1", "?", 1)
	}
	if s.inTx {
		return s.conn(ctx).Raw(q, hash).Rows()
	}
	if stmt := s.keyAccessStmt(ctx, q); stmt != nil {
		return stmt.QueryContext(ctx, hash)
	}
	// Preparation failed (the database is down): run it unprepared, which
	// reports the failure; the next call tries to prepare again.
	return s.conn(ctx).Raw(q, hash).Rows()
}

func (s *Store) keyAccessStmt(ctx context.Context, q string) *sql.Stmt {
	if stmt := s.keyAccess.stmt.Load(); stmt != nil {
		return stmt
	}
	s.keyAccess.mu.Lock()
	defer s.keyAccess.mu.Unlock()
	if stmt := s.keyAccess.stmt.Load(); stmt != nil {
		return stmt
	}
	if s.inTx {
		return nil
	}
	// The reader pool: on SQLite a write waiting for another process's
	// lock must not stall the hot path's reads.
	db, err := s.rdb.DB()
	if err != nil {
		return nil
	}
	stmt, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	s.keyAccess.stmt.Store(stmt)
	return stmt
}

// keyAccessRow is one row of keyAccessQuery; nullable everywhere the LEFT
// JOINs may leave a gap.
type keyAccessRow struct {
	kHash, kAlias, kUser, kTeam, kModels, kRoutes sql.NullString
	kMax                                          sql.NullFloat64
	kReset                                        sql.NullTime
	kSpend                                        sql.NullFloat64
	kTPM, kRPM                                    sql.NullInt64
	kBlocked                                      sql.NullBool
	kExpires                                      sql.NullTime
	kType                                         sql.NullString

	uID, uEmail, uRole, uModels sql.NullString
	uMax                        sql.NullFloat64
	uReset                      sql.NullTime
	uSpend                      sql.NullFloat64
	uDisabled                   sql.NullBool
	uTPM, uRPM                  sql.NullInt64

	tID, tModels sql.NullString
	tMax         sql.NullFloat64
	tReset       sql.NullTime
	tSpend       sql.NullFloat64
	tBlocked     sql.NullBool
	tTPM, tRPM   sql.NullInt64

	mTeam  sql.NullString
	mMax   sql.NullFloat64
	mSpend sql.NullFloat64
}

func (r *keyAccessRow) dest() []any {
	return []any{&r.kHash, &r.kAlias, &r.kUser, &r.kTeam, &r.kModels, &r.kRoutes, &r.kMax, &r.kReset, &r.kSpend,
		&r.kTPM, &r.kRPM, &r.kBlocked, &r.kExpires, &r.kType,
		&r.uID, &r.uEmail, &r.uRole, &r.uModels, &r.uMax, &r.uReset, &r.uSpend, &r.uDisabled, &r.uTPM, &r.uRPM,
		&r.tID, &r.tModels, &r.tMax, &r.tReset, &r.tSpend, &r.tBlocked, &r.tTPM, &r.tRPM,
		&r.mTeam, &r.mMax, &r.mSpend}
}

func (r *keyAccessRow) access() (store.KeyAccess, error) {
	var errs []error
	strs := func(v sql.NullString, what string) []string {
		l, err := decodeStrings(v.String, what)
		errs = append(errs, err)
		return l
	}
	a := store.KeyAccess{Key: store.Key{
		Hash: r.kHash.String, Alias: r.kAlias.String, UserID: r.kUser.String, TeamID: r.kTeam.String,
		Models: strs(r.kModels, "key models"), AllowedRoutes: strs(r.kRoutes, "allowed_routes"),
		MaxBudget: floatPtr(r.kMax), BudgetResetAt: timePtr(r.kReset), Spend: r.kSpend.Float64,
		TPMLimit: intPtr(r.kTPM), RPMLimit: intPtr(r.kRPM), Blocked: r.kBlocked.Bool,
		ExpiresAt: timePtr(r.kExpires), KeyType: r.kType.String,
	}}
	if r.uID.Valid {
		a.Owner = &store.User{ID: r.uID.String, Email: r.uEmail.String, Role: r.uRole.String,
			Models: strs(r.uModels, "user models"), MaxBudget: floatPtr(r.uMax), BudgetResetAt: timePtr(r.uReset),
			Spend: r.uSpend.Float64, Disabled: r.uDisabled.Bool, TPMLimit: intPtr(r.uTPM), RPMLimit: intPtr(r.uRPM)}
	}
	if r.tID.Valid {
		a.Team = &store.Team{ID: r.tID.String, Models: strs(r.tModels, "team models"), MaxBudget: floatPtr(r.tMax),
			BudgetResetAt: timePtr(r.tReset), Spend: r.tSpend.Float64, Blocked: r.tBlocked.Bool,
			TPMLimit: intPtr(r.tTPM), RPMLimit: intPtr(r.tRPM)}
	}
	return a, errors.Join(errs...)
}

func floatPtr(v sql.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	f := v.Float64
	return &f
}

func intPtr(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	i := v.Int64
	return &i
}

func timePtr(v sql.NullTime) *time.Time {
	if !v.Valid {
		return nil
	}
	t := v.Time.UTC()
	return &t
}
