package auth

import (
	"errors"
	"runtime"
	"testing"
	"time"
)

// An idle server holds two caches; their negative rings must not cost
// their bound before anything is put in them (they were 3 MiB of a 5 MiB
// idle heap).
func TestNegativeRingGrowsOnDemand(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := NewCache(time.Minute, time.Second, 0, nil)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
		t.Fatalf("a new cache allocated %d bytes; want its negative ring to grow as answers arrive", grew)
	}
	runtime.KeepAlive(c)
}

func TestNegativeRingEvictsOldestAtItsBound(t *testing.T) {
	r := newNegRing(3)
	until := time.Now().Add(time.Minute)
	unknown := errors.New("unknown")
	for _, k := range []string{"a", "b", "c", "d"} {
		r.put(k, Entry{Err: unknown, until: until})
	}
	if _, ok := r.get("a"); ok || r.len() != 3 {
		t.Fatalf("after 4 puts in a ring of 3: a held=%v, len=%d; want the oldest evicted and 3 held", ok, r.len())
	}
	// A name deleted and put again is held again; the next put reuses
	// the oldest remaining slot.
	r.del("b")
	r.put("b", Entry{Err: unknown, until: until})
	r.put("e", Entry{Err: unknown, until: until})
	for k, want := range map[string]bool{"b": true, "c": false, "d": true, "e": true} {
		if _, ok := r.get(k); ok != want {
			t.Errorf("%s held = %v, want %v", k, ok, want)
		}
	}
	if r.len() > r.size() {
		t.Fatalf("ring holds %d answers, bound %d", r.len(), r.size())
	}
}
