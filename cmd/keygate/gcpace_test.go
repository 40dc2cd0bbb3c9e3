package main

import (
	"errors"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/peak"
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

	anonKiB := rssAnonKiB(t, p.cmd.Process.Pid)
	require.Less(t, float64(anonKiB*1024), inuse, "the headroom block became resident (%d KiB anonymous, %.0f bytes of heap in use)", anonKiB, inuse)
}

var rssAnonLine = regexp.MustCompile(`(?m)^RssAnon:\s+(\d+) kB$`)

// readRSSAnon reads a process's resident anonymous memory in KiB.
func readRSSAnon(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	m := rssAnonLine.FindSubmatch(b)
	if m == nil {
		return 0, errors.New("no RssAnon line in /proc/PID/status")
	}
	return strconv.Atoi(string(m[1]))
}

// rssAnonKiB is readRSSAnon for a test; the test skips where there is no
// /proc to read.
func rssAnonKiB(t *testing.T, pid int) int {
	t.Helper()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no /proc to read resident memory from: %v", err)
	}
	n, err := readRSSAnon(pid)
	require.NoError(t, err)
	return n
}

// A burst of 50 password logins (argon2id at the default 19 MiB, two at a
// time) must not let freed hash buffers pile up: they are collected
// before the next computation allocates, and the pages go back to the OS
// when the burst is over. Before, the pacer let the server's anonymous memory reach ~125 MiB
// and stay near it for minutes.
func TestLoginBurstMemory(t *testing.T) {
	const master = "sk-burst-0123456789abcdef0123456789abcdef"
	p := startProcess(t, map[string]string{"LITELLM_MASTER_KEY": master, "KEYGATE_DATA_DIR": t.TempDir()})
	pid := p.cmd.Process.Pid
	rssAnonKiB(t, pid) // skips without /proc
	status, body := p.call(http.MethodPost, "/user/new", master, `{"user_id":"burst","user_email":"burst@example.com","user_role":"internal_user"}`)
	require.Equal(t, http.StatusOK, status, body)
	status, body = p.call(http.MethodPost, "/user/update", master, `{"user_id":"burst","password":"Burst-Pass-123"}`)
	require.Equal(t, http.StatusOK, status, body)

	stopPeak := peak.Track(2*time.Millisecond, func() (int, bool) {
		n, err := readRSSAnon(pid)
		return n, err == nil
	})
	var wg sync.WaitGroup
	codes := make(chan int, 50)
	for range 50 {
		wg.Go(func() {
			status, _ := p.call(http.MethodPost, "/v2/login", "", `{"username":"burst@example.com","password":"Burst-Pass-123"}`)
			codes <- status
		})
	}
	wg.Wait()
	most := stopPeak()
	close(codes)
	ok := 0
	for c := range codes {
		require.Contains(t, []int{http.StatusOK, http.StatusTooManyRequests}, c)
		if c == http.StatusOK {
			ok++
		}
	}
	require.Positive(t, ok, "no login of the burst succeeded")
	t.Logf("%d of 50 logins succeeded; peak anonymous RSS %.1f MiB", ok, float64(most)/1024)
	require.Less(t, most, 80*1024, "freed argon2id buffers piled up during the burst")

	deadline := time.Now().Add(5 * time.Second)
	for rssAnonKiB(t, pid) > 48*1024 {
		if time.Now().After(deadline) {
			t.Fatalf("anonymous RSS still %.1f MiB 5 s after the burst; want the freed pages returned", float64(rssAnonKiB(t, pid))/1024)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
