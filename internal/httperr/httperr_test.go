package httperr

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
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

// TestWriteCanceledButClientStillThere: an error that says "canceled"
// while the request's own context is alive was not the client leaving but
// a bound of ours cutting a database call short (found by an outside
// attack: writes against a black-holed database answered 499 to clients
// still waiting). That is the database not answering: 503, Retry-After.
func TestWriteCanceledButClientStillThere(t *testing.T) {
	gin.SetMode(gin.TestMode)
	canceled := fmt.Errorf("service: update key: gormstore: transaction: %w", context.Canceled)

	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest(http.MethodPost, "/key/update", nil)
	Write(c, canceled)
	require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.Contains(t, w.Body.String(), "service_unavailable")

	// The client really gone: 499, as before.
	w = httptest.NewRecorder()
	c, _ = gin.CreateTestContext(w)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.Request = httptest.NewRequest(http.MethodPost, "/key/update", nil).WithContext(ctx)
	Write(c, canceled)
	require.Equal(t, StatusClientClosed, w.Code)
}
