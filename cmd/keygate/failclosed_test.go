package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCacheFailClosedOnSQLite: a single instance hears every change, so
// KEYGATE_CACHE_FAIL_CLOSED changes nothing on SQLite — its cache stays in
// use (seen failing: with no listener heartbeat to renew it, the cache
// stopped being used 3 s after start, and every check read the database).
func TestCacheFailClosedOnSQLite(t *testing.T) {
	const master = "sk-failclosed-0123456789abcdef0123456789ab"
	p := startProcess(t, map[string]string{"LITELLM_MASTER_KEY": master, "KEYGATE_DATA_DIR": t.TempDir(), "KEYGATE_CACHE_FAIL_CLOSED": "true"})
	status, body := p.call(http.MethodPost, "/key/generate", master, `{}`)
	require.Equal(t, http.StatusOK, status, body)
	var k struct{ Key string }
	require.NoError(t, json.Unmarshal([]byte(body), &k))
	time.Sleep(4 * time.Second) // past the fail-closed grace
	for range 3 {
		status, _ := p.call(http.MethodGet, "/auth/verify", k.Key, "")
		require.Equal(t, http.StatusOK, status)
	}
	_, metrics := p.call(http.MethodGet, "/metrics", master, "")
	require.Regexp(t, regexp.MustCompile(`(?m)^keygate_auth_cache_trusted\{cache="api_key"\} 1$`), metrics)
	hits := regexp.MustCompile(`(?m)^keygate_auth_cache_hits_total\{cache="api_key"\} (\S+)$`).FindStringSubmatch(metrics)
	require.NotNil(t, hits)
	require.NotEqual(t, "0", hits[1], "the cache answered none of the checks")
}
