package httperr

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/store"
)

// TestResolveDatabaseFailures: an unreachable or slow database is a 503
// with Retry-After; one that cannot be written says so.
func TestResolveDatabaseFailures(t *testing.T) {
	status, typ, msg, _, retry := Resolve(fmt.Errorf("service: x: %w", fmt.Errorf("%w: boom", store.ErrUnavailable)))
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "service_unavailable", typ)
	require.Contains(t, msg, "unavailable")
	require.Positive(t, retry)

	status, _, msg, _, retry = Resolve(fmt.Errorf("%w: %w: database or disk is full", store.ErrUnavailable, store.ErrNotWritable))
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Contains(t, msg, "disk full or read-only")
	require.Positive(t, retry)
}

// TestResolveClientGone: a request whose client left while it waited is
// nginx's 499, not a 500 in the error log.
func TestResolveClientGone(t *testing.T) {
	status, _, _, _, _ := Resolve(fmt.Errorf("service: login: wait for a hashing slot: %w", context.Canceled))
	require.Equal(t, StatusClientClosed, status)
	status, _, _, _, _ = Resolve(&apperr.Error{Kind: apperr.KindInternal, Err: fmt.Errorf("x: %w", context.Canceled)})
	require.Equal(t, StatusClientClosed, status)
}
