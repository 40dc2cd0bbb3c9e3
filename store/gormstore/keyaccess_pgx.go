package gormstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/keygate/keygate/store"
)

// errNotPgx: the pool's connection is not pgx's (never on a pool this
// package opened).
var errNotPgx = errors.New("gormstore: connection is not pgx")

// errInfiniteTime: a timestamp column holds ±infinity (Keygate never
// writes one).
var errInfiniteTime = errors.New("gormstore: infinite timestamp")

// keyAccessPgx runs keyAccessQuery on PostgreSQL through pgx's own
// interface on a connection borrowed from the database/sql pool. The
// database/sql route cost half of a miss's allocations (stdlib builds a
// value converter per column of every result, then database/sql converts
// each value again); pgx scans its binary results straight into typed
// holders. pgx prepares the statement once per connection and caches it
// (its default exec mode), so a lookup stays one round trip; a URL that
// selects another exec mode (simple protocol behind PgBouncer) is
// honoured as before.
func (s *Store) keyAccessPgx(ctx context.Context, hash string) (store.KeyAccess, error) {
	var out store.KeyAccess
	err := s.withPgx(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, keyAccessQuery, hash)
		if err != nil {
			return err
		}
		n := 0
		err = scanKeyAccessRows(rows, func(string) (*store.KeyAccess, bool) {
			n++
			return &out, n > 1
		}, func(_ string, err error) error { return err })
		if err == nil && n == 0 {
			err = store.ErrNotFound
		}
		return err
	})
	return out, err
}

// keyAccessManyPgx is keyAccessPgx for several keys in one statement
// (keyAccessBatcher's batches). Keys not found are absent from the map. A
// key whose row cannot be read (a column that does not decode) fails
// alone: its entry holds the error, the other keys are answered.
func (s *Store) keyAccessManyPgx(ctx context.Context, hashes []string) (map[string]keyAccessResult, error) {
	found := make(map[string]*keyAccessResult, len(hashes))
	err := s.withPgx(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, keyAccessManyQuery, hashes)
		if err != nil {
			return err
		}
		return scanKeyAccessRows(rows, func(hash string) (*store.KeyAccess, bool) {
			if r, ok := found[hash]; ok {
				if r.err != nil {
					return nil, true // rows of a key that failed are skipped
				}
				return &r.access, true
			}
			r := new(keyAccessResult)
			found[hash] = r
			return &r.access, false
		}, func(hash string, err error) error {
			found[hash].err = err
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]keyAccessResult, len(found))
	for h, r := range found {
		if r.err != nil {
			r.access = store.KeyAccess{}
		}
		out[h] = *r
	}
	return out, nil
}

// withPgx runs fn on a pgx connection from the reader pool.
func (s *Store) withPgx(ctx context.Context, fn func(*pgx.Conn) error) error {
	db, err := s.rdb.DB()
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }() // back to the pool; Raw's error is what matters
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return errNotPgx
		}
		return fn(c.Conn())
	})
}

// scanKeyAccessRows reads keyAccessQuery's rows (one per membership of a
// key's owner, at least one per key). For each row, slot returns where
// that key's answer is built (nil: skip the row) and whether an earlier
// row already built it; every row with a membership adds it. A key whose
// first row does not decode goes to bad, which returns the error to stop
// reading or nil to go on with the other keys.
func scanKeyAccessRows(rows pgx.Rows, slot func(hash string) (*store.KeyAccess, bool),
	bad func(hash string, err error) error) error {
	defer rows.Close()
	var r keyAccessPgRow
	dest := r.dest()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		a, built := slot(r.kHash.String)
		if a == nil {
			continue
		}
		if !built {
			var err error
			if r.kReset.InfinityModifier|r.kExpires.InfinityModifier|r.uReset.InfinityModifier|r.tReset.InfinityModifier != pgtype.Finite {
				// No time.Time holds it, and "never" is not what -infinity
				// means for an expiry: refuse, as database/sql's route does.
				err = errInfiniteTime
			} else {
				*a, err = r.std().access()
			}
			if err != nil {
				if err := bad(r.kHash.String, err); err != nil {
					return err
				}
				continue
			}
		}
		if r.mTeam.Valid {
			a.Memberships = append(a.Memberships, store.Membership{TeamID: r.mTeam.String, UserID: a.Key.UserID,
				MaxBudgetInTeam: pgFloatPtr(r.mMax), Spend: r.mSpend.Float64})
		}
	}
	return rows.Err()
}

// keyAccessPgRow is keyAccessRow with pgx's holders, which pgx fills
// without reflection or a per-call converter.
type keyAccessPgRow struct {
	kHash, kAlias, kUser, kTeam, kModels, kRoutes pgtype.Text
	kMax                                          pgtype.Float8
	kReset                                        pgtype.Timestamptz
	kSpend                                        pgtype.Float8
	kTPM, kRPM                                    pgtype.Int8
	kBlocked                                      pgtype.Bool
	kExpires                                      pgtype.Timestamptz
	kType                                         pgtype.Text

	uID, uEmail, uRole, uModels pgtype.Text
	uMax                        pgtype.Float8
	uReset                      pgtype.Timestamptz
	uSpend                      pgtype.Float8
	uDisabled                   pgtype.Bool
	uTPM, uRPM                  pgtype.Int8

	tID, tModels pgtype.Text
	tMax         pgtype.Float8
	tReset       pgtype.Timestamptz
	tSpend       pgtype.Float8
	tBlocked     pgtype.Bool
	tTPM, tRPM   pgtype.Int8

	mTeam  pgtype.Text
	mMax   pgtype.Float8
	mSpend pgtype.Float8
}

func (r *keyAccessPgRow) dest() []any {
	return []any{&r.kHash, &r.kAlias, &r.kUser, &r.kTeam, &r.kModels, &r.kRoutes, &r.kMax, &r.kReset, &r.kSpend,
		&r.kTPM, &r.kRPM, &r.kBlocked, &r.kExpires, &r.kType,
		&r.uID, &r.uEmail, &r.uRole, &r.uModels, &r.uMax, &r.uReset, &r.uSpend, &r.uDisabled, &r.uTPM, &r.uRPM,
		&r.tID, &r.tModels, &r.tMax, &r.tReset, &r.tSpend, &r.tBlocked, &r.tTPM, &r.tRPM,
		&r.mTeam, &r.mMax, &r.mSpend}
}

// std converts the row to keyAccessRow, so both routes build a
// store.KeyAccess with the same code.
func (r *keyAccessPgRow) std() *keyAccessRow {
	return &keyAccessRow{
		kHash: pgText(r.kHash), kAlias: pgText(r.kAlias), kUser: pgText(r.kUser), kTeam: pgText(r.kTeam),
		kModels: pgText(r.kModels), kRoutes: pgText(r.kRoutes), kMax: pgFloat(r.kMax), kReset: pgTime(r.kReset),
		kSpend: pgFloat(r.kSpend), kTPM: pgInt(r.kTPM), kRPM: pgInt(r.kRPM), kBlocked: pgBool(r.kBlocked),
		kExpires: pgTime(r.kExpires), kType: pgText(r.kType),
		uID: pgText(r.uID), uEmail: pgText(r.uEmail), uRole: pgText(r.uRole), uModels: pgText(r.uModels),
		uMax: pgFloat(r.uMax), uReset: pgTime(r.uReset), uSpend: pgFloat(r.uSpend), uDisabled: pgBool(r.uDisabled),
		uTPM: pgInt(r.uTPM), uRPM: pgInt(r.uRPM),
		tID: pgText(r.tID), tModels: pgText(r.tModels), tMax: pgFloat(r.tMax), tReset: pgTime(r.tReset),
		tSpend: pgFloat(r.tSpend), tBlocked: pgBool(r.tBlocked), tTPM: pgInt(r.tTPM), tRPM: pgInt(r.tRPM),
		mTeam: pgText(r.mTeam), mMax: pgFloat(r.mMax), mSpend: pgFloat(r.mSpend),
	}
}

func pgText(v pgtype.Text) sql.NullString { return sql.NullString{String: v.String, Valid: v.Valid} }
func pgFloat(v pgtype.Float8) sql.NullFloat64 {
	return sql.NullFloat64{Float64: v.Float64, Valid: v.Valid}
}
func pgInt(v pgtype.Int8) sql.NullInt64 { return sql.NullInt64{Int64: v.Int64, Valid: v.Valid} }
func pgBool(v pgtype.Bool) sql.NullBool { return sql.NullBool{Bool: v.Bool, Valid: v.Valid} }

func pgTime(v pgtype.Timestamptz) sql.NullTime {
	return sql.NullTime{Time: v.Time, Valid: v.Valid}
}

func pgFloatPtr(v pgtype.Float8) *float64 { return floatPtr(pgFloat(v)) }
