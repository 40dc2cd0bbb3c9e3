package main

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// The process runs with the collector's pacing at defaultGCPercent unless
// the operator set GOGC, which always wins.
func TestCollectorPacing(t *testing.T) {
	const master = "sk-gcpace-0123456789abcdef0123456789abcdef"
	gogc := regexp.MustCompile(`(?m)^go_gc_gogc_percent (\d+)$`)
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "400"},
		{map[string]string{"GOGC": "150"}, "150"},
	} {
		env := map[string]string{"LITELLM_MASTER_KEY": master, "KEYGATE_DATA_DIR": t.TempDir()}
		for k, v := range tc.env {
			env[k] = v
		}
		p := startProcess(t, env)
		status, body := p.call(http.MethodGet, "/metrics", master, "")
		require.Equal(t, http.StatusOK, status)
		m := gogc.FindStringSubmatch(body)
		require.NotNil(t, m, "go_gc_gogc_percent is not in /metrics")
		require.Equal(t, tc.want, m[1], "GOGC set: %v", tc.env)
	}
}
