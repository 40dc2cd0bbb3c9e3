package main

import (
	"net/http"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// The collector's headroom block counts as heap to the pacer but is never
// resident: the process's anonymous memory (heap, stacks, runtime and
// SQLite allocations) stays below the heap the runtime counts in use, which
// it could not if the block's pages had been touched.
func TestCollectorHeadroomIsNotResident(t *testing.T) {
	const master = "sk-gcpace-0123456789abcdef0123456789abcdef"
	p := startProcess(t, map[string]string{"LITELLM_MASTER_KEY": master, "KEYGATE_DATA_DIR": t.TempDir()})
	status, body := p.call(http.MethodGet, "/metrics", master, "")
	require.Equal(t, http.StatusOK, status)
	metric := func(name string) float64 {
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(body)
		require.NotNil(t, m, "%s is not in /metrics", name)
		v, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		return v
	}
	require.GreaterOrEqual(t, metric("go_memstats_heap_alloc_bytes"), float64(gcHeadroom), "the pacer does not see the headroom block")
	inuse := metric("go_memstats_heap_inuse_bytes")

	procStatus, err2 := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err2 != nil {
		t.Skipf("no /proc to read resident memory from: %v", err2)
	}
	a := regexp.MustCompile(`(?m)^RssAnon:\s+(\d+) kB$`).FindSubmatch(procStatus)
	require.NotNil(t, a)
	anonKiB, err := strconv.Atoi(string(a[1]))
	require.NoError(t, err)
	require.Less(t, float64(anonKiB*1024), inuse, "the headroom block became resident (%d KiB anonymous, %.0f bytes of heap in use)", anonKiB, inuse)
}
