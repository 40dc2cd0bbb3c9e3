package upstream_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkForwardOverhead alternates one chat completion straight to the
// fake upstream with one through Keygate (authentication from the cache,
// model and budget check, body inspection, header rewrite, metering, the
// spend write in the background), in the same process and the same run,
// and reports both latencies and the difference (mean, median, p90).
func BenchmarkForwardOverhead(b *testing.B) {
	// "wiring": OnSpend invalidates the key's cached principal after every
	// recorded entry, as internal/app does, so a busy key is looked up in
	// the database again after each answer. "cached": it does not, which
	// shows what that costs.
	b.Run("wiring", func(b *testing.B) { benchForward(b, false) })
	b.Run("cached", func(b *testing.B) { benchForward(b, true) })
}

func benchForward(b *testing.B, keep bool) {
	e := newEnv(b, envConfig{keepCache: keep})
	e.up.setMode("bench")
	body := `{"model":"gpt-test","messages":[{"role":"user","content":"Say hello"}]}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	do := func(url, key string) time.Duration {
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d from %s", resp.StatusCode, url)
		}
		return d
	}
	direct, proxied := e.upSrv.URL+"/v1/chat/completions", e.srv.URL+"/v1/chat/completions"
	do(direct, upstreamKey) // warm connections and the key cache
	do(proxied, e.key)
	var ds, ps []time.Duration
	for b.Loop() {
		ds = append(ds, do(direct, upstreamKey))
		ps = append(ps, do(proxied, e.key))
	}
	dMean, pMean := mean(ds), mean(ps)
	dP50, pP50 := median(ds), median(ps)
	b.ReportMetric(float64(dMean.Nanoseconds()), "direct-ns/call")
	b.ReportMetric(float64(pMean.Nanoseconds()), "proxied-ns/call")
	b.ReportMetric(float64((pMean - dMean).Nanoseconds()), "added-ns/call")
	b.ReportMetric(float64((pP50-dP50).Nanoseconds())/1e3, "added-p50-µs")
	b.ReportMetric(float64((pct(ps, 90)-pct(ds, 90)).Nanoseconds())/1e3, "added-p90-µs")
}

// BenchmarkOpenStreams holds 200 streams open through Keygate at once (the
// upstream waits after the first chunk) and reports the heap and
// goroutines they cost.
func BenchmarkOpenStreams(b *testing.B) {
	const streams = 200
	e := newEnv(b, envConfig{})
	e.up.setMode("bench")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams}}
	defer client.CloseIdleConnections()
	var heap, gor float64
	for b.Loop() {
		gate := make(chan struct{})
		e.up.setGate(gate)
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		var opened, done sync.WaitGroup
		opened.Add(streams)
		done.Add(streams)
		for range streams {
			go func() {
				defer done.Done()
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, e.srv.URL+"/v1/chat/completions",
					strings.NewReader(`{"model":"gpt-test","stream":true,"messages":[]}`))
				req.Header.Set("Authorization", "Bearer "+e.key)
				resp, err := client.Do(req)
				if err != nil {
					opened.Done()
					b.Error(err)
					return
				}
				r := bufio.NewReader(resp.Body)
				_, err = r.ReadString('\n')
				opened.Done()
				if err == nil {
					_, err = io.Copy(io.Discard, r)
				}
				_ = resp.Body.Close()
				if err != nil {
					b.Error(err)
				}
			}()
		}
		opened.Wait()
		runtime.GC()
		var during runtime.MemStats
		runtime.ReadMemStats(&during)
		heap = float64(int64(during.HeapInuse)-int64(before.HeapInuse)) / (1 << 20)
		gor = float64(runtime.NumGoroutine() - g0)
		close(gate)
		done.Wait()
	}
	// Both sides live in this process: the numbers include the fake
	// upstream's and the client's share of each stream.
	b.ReportMetric(heap, "heap-MiB/200-streams")
	b.ReportMetric(gor, "goroutines/200-streams")
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func median(ds []time.Duration) time.Duration { return pct(ds, 50) }

// pct returns the p-th percentile of ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)*p/100]
}
