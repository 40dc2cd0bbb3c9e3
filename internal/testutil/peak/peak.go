// Package peak samples a quantity while a test runs (a process's RSS, the
// heap in use) and reports the largest value seen.
package peak

import (
	"cmp"
	"time"
)

// Track calls read at once and then every interval until the returned
// stop is called; stop returns the largest value read. Reads that report
// false are skipped.
func Track[T cmp.Ordered](every time.Duration, read func() (T, bool)) (stop func() T) {
	done := make(chan struct{})
	result := make(chan T)
	go func() {
		var most T
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if v, ok := read(); ok {
				most = max(most, v)
			}
			select {
			case <-done:
				result <- most
				return
			case <-tick.C:
			}
		}
	}()
	return func() T {
		close(done)
		return <-result
	}
}
