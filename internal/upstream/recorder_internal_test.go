package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/internal/testutil/syncbuf"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

// TestPoisonEntrySetAsideOthersRecorded: a batch holding one entry the
// database refuses (a NUL byte PostgreSQL cannot store) and many whose
// response id an upstream reused (already recorded once) fails as a
// whole. The healthy entries must all be recorded — the reused ids under
// derived ids — and the poison entry logged, not lost silently.
func TestPoisonEntrySetAsideOthersRecorded(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			o := gormstore.Options{SQLitePath: dbtest.SQLitePath(t)}
			if dialect == "postgres" {
				o = gormstore.Options{DatabaseURL: dbtest.PostgresURL(t)}
			}
			ctx := context.Background()
			st, err := gormstore.Open(ctx, o)
			require.NoError(t, err)
			defer st.Close()
			now := time.Now().UTC()
			require.NoError(t, st.CreateUser(ctx, &store.User{ID: "u", Role: "internal_user", CreatedAt: now, UpdatedAt: now}))
			// The upstream answered "chatcmpl-same" before.
			require.NoError(t, st.RecordSpend(ctx, store.SpendEntry{RequestID: "chatcmpl-same", UserID: "u", Model: "m", Spend: 1, CreatedAt: now}))

			logs := &syncbuf.Buffer{}
			r := testRecorder(t, st, slog.New(slog.NewTextHandler(logs, nil)))
			const healthy = 18
			for i := range healthy {
				r.enqueue(store.SpendEntry{RequestID: "chatcmpl-same", UserID: "u", Model: "m", Spend: 1,
					CompletionTokens: int64(i), CreatedAt: now.Add(time.Duration(i+1) * time.Millisecond)})
			}
			r.enqueue(store.SpendEntry{RequestID: "poison", UserID: "u", Model: "bad\x00model", Spend: 1, CreatedAt: now})
			require.NoError(t, r.close(ctx))

			_, n, err := st.ListSpend(ctx, store.SpendFilter{UserID: "u", Page: store.Page{Limit: 100}})
			require.NoError(t, err)
			u, err := st.GetUser(ctx, "u")
			require.NoError(t, err)
			if dialect == "sqlite" {
				// SQLite stores the NUL: nothing is poison there.
				require.EqualValues(t, 1+healthy+1, n, logs.String())
				require.Equal(t, float64(1+healthy+1), u.Spend)
				return
			}
			require.EqualValues(t, 1+healthy, n, "every healthy entry recorded\n%s", logs.String())
			require.Equal(t, float64(1+healthy), u.Spend)
			require.Contains(t, logs.String(), "poison", "the refused entry is logged with its request id")
		})
	}
}

// TestReplayIsIdempotent: writing the same entries again (a replay after
// a commit whose answer was lost) records nothing twice, including
// entries stored under a derived id because the upstream reused theirs.
func TestReplayIsIdempotent(t *testing.T) {
	ctx := context.Background()
	st, err := gormstore.Open(ctx, gormstore.Options{SQLitePath: dbtest.SQLitePath(t)})
	require.NoError(t, err)
	defer st.Close()
	now := time.Now().UTC()
	require.NoError(t, st.CreateUser(ctx, &store.User{ID: "u", Role: "internal_user", CreatedAt: now, UpdatedAt: now}))
	var es []store.SpendEntry
	for i := range 5 {
		es = append(es, store.SpendEntry{RequestID: fmt.Sprintf("r%d", i%3), UserID: "u", Model: "m", Spend: 0.25,
			CreatedAt: now.Add(time.Duration(i) * time.Millisecond)})
	}
	for range 3 {
		r := testRecorder(t, st, slog.New(slog.DiscardHandler))
		for _, e := range es {
			r.enqueue(e)
		}
		require.NoError(t, r.close(ctx))
	}
	_, n, err := st.ListSpend(ctx, store.SpendFilter{UserID: "u"})
	require.NoError(t, err)
	require.EqualValues(t, 5, n)
	u, err := st.GetUser(ctx, "u")
	require.NoError(t, err)
	require.Equal(t, 1.25, u.Spend)
}

// testRecorder is a recorder with one worker and a spool in a temp dir.
func testRecorder(t *testing.T, s SpendRecorder, log *slog.Logger) *recorder {
	t.Helper()
	r, err := newRecorder(s, nil, nil, log, t.TempDir(), 100, 1)
	require.NoError(t, err)
	return r
}
