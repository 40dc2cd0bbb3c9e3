package password

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/peak"
)

const (
	burst = 50 // simultaneous logins in the memory measurement
	mib   = 1 << 20
)

// hashBurst runs n concurrent Hash calls and returns how far HeapInuse
// rose above its starting point at the highest sample. Sampling every
// 200 µs is far finer than one argon2 run (tens of ms), so the peak of
// each allocation is seen.
func hashBurst(tb testing.TB, h *Hasher, n int) (peakGrowth uint64) {
	tb.Helper()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse

	stopPeak := peak.Track(200*time.Microsecond, func() (uint64, bool) {
		var s runtime.MemStats
		runtime.ReadMemStats(&s)
		return s.HeapInuse, true
	})

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := h.Hash(context.Background(), "correct horse battery")
			errs <- err
		})
	}
	wg.Wait()
	most := stopPeak()
	close(errs)
	for err := range errs {
		require.NoError(tb, err)
	}
	if most < base {
		return 0
	}
	return most - base
}

// 50 logins at once with two slots must hold about two argon2 buffers
// (19 MiB each), not fifty (950 MiB). The bound leaves room for the
// garbage collector's lag (GOGC=100 lets the heap reach twice the live
// set before collecting) and is still far below the unbounded figure.
func TestConcurrentHashMemoryIsBounded(t *testing.T) {
	const slots = 2
	p := DefaultParams()
	h, err := New(p, slots)
	require.NoError(t, err)
	h.LimitQueue(burst) // every call waits its turn: this measures the slots

	growth := hashBurst(t, h, burst)
	perHash := uint64(p.Memory) * 1024
	t.Logf("peak HeapInuse growth for %d concurrent Hash calls, %d slots, m=%d KiB: %.1f MiB (%.1f× one hash)",
		burst, slots, p.Memory, float64(growth)/mib, float64(growth)/float64(perHash))
	require.Less(t, growth, 8*perHash, "memory is not bounded by the semaphore")
}

// BenchmarkHashBurstPeakMemory reports the peak heap growth of 50
// concurrent Hash calls with DefaultParams and two slots.
func BenchmarkHashBurstPeakMemory(b *testing.B) {
	h, err := New(DefaultParams(), 2)
	require.NoError(b, err)
	h.LimitQueue(burst)
	var worst uint64
	for b.Loop() {
		worst = max(worst, hashBurst(b, h, burst))
	}
	b.ReportMetric(float64(worst)/mib, "peak-MiB")
}
