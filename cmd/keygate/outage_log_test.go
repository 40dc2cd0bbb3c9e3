package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
)

// TestOutageDoesNotFloodTheLog: with the database gone, every request
// fails the same way; the log says so a bounded number of times instead
// of once or twice per request.
func TestOutageDoesNotFloodTheLog(t *testing.T) {
	c := dbtest.NewCluster(t)
	const master = "sk-master-outage-log"
	base, out, _ := startServer(t, map[string]string{"DATABASE_URL": c.URL(), "LITELLM_MASTER_KEY": master})
	code, body := get(t, base+"/user/list", master)
	require.Equal(t, http.StatusOK, code, body)

	c.Stop()
	before := strings.Count(out.String(), "level=ERROR")
	const n = 200
	for range n {
		code, body := get(t, base+"/user/list", master)
		require.Equal(t, http.StatusServiceUnavailable, code, body)
	}
	errorsLogged := strings.Count(out.String(), "level=ERROR") - before
	require.Less(t, errorsLogged, n/2, "error lines for %d failed requests", n)
	require.Positive(t, errorsLogged, "the failure is still reported")
}
