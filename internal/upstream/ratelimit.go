package upstream

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
)

// maxBuckets bounds the limiter's map; when it is reached, buckets that
// have refilled completely (idle keys) are dropped.
const maxBuckets = 100_000

// bucket is a token bucket holding up to limit tokens and refilling
// limit per minute, continuously. tokens may go negative (a TPM bucket
// charged with a large answer).
type bucket struct {
	limit  int64
	tokens float64
	at     time.Time
}

// sync refills the bucket up to now; a changed limit starts it full.
func (b *bucket) sync(limit int64, now time.Time) {
	if b.limit != limit || b.at.IsZero() {
		b.limit, b.tokens, b.at = limit, float64(limit), now
		return
	}
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = math.Min(float64(limit), b.tokens+el*float64(limit)/60)
		b.at = now
	}
}

// until is how long the bucket needs to hold more than want tokens.
func (b *bucket) until(want float64) time.Duration {
	if b.limit <= 0 {
		return time.Minute
	}
	return time.Duration((want - b.tokens) / (float64(b.limit) / 60) * float64(time.Second))
}

func (b *bucket) full() bool { return b.tokens >= float64(b.limit) }

type keyBuckets struct{ rpm, tpm bucket }

// limiter holds the per-key buckets of this instance.
type limiter struct {
	mu sync.Mutex
	m  map[string]*keyBuckets
}

func newLimiter() *limiter { return &limiter{m: map[string]*keyBuckets{}} }

// limit is a configured limit as a number; -1 means none. A limit of 0
// admits nothing, as in LiteLLM.
func limit(v *int64) int64 {
	if v == nil || *v < 0 {
		return -1
	}
	return *v
}

// rateLimitsOf returns the limits that apply to p's request: an API key's
// own, its owner's and its team's, or a session's user's
// (auth.Access.RateLimits).
func rateLimitsOf(p auth.Principal) []auth.RateLimit {
	if p.Access == nil {
		return nil
	}
	return p.Access.RateLimits
}

// admit takes one request from the RPM bucket of every limit that applies
// (key, owner, team) and refuses while any TPM bucket is overdrawn; it
// takes nothing unless every limit admits.
//
// A call admitted under a TPM limit takes its estimate (prompt + output)
// from each TPM bucket at once and returns how much it took: concurrent
// calls see what the ones before them may use, so a burst cannot all pass
// on one bucket that each alone would pass. charge settles it with the
// real tokens.
func (l *limiter) admit(p auth.Principal, now time.Time, prompt, output int64) (held int64, err error) {
	lims := rateLimitsOf(p)
	if len(lims) == 0 {
		return 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	bs := make([]*keyBuckets, len(lims))
	est := prompt + output
	for i, rl := range lims {
		b := l.get(rl.ID, now)
		bs[i] = b
		if tpm := limit(rl.TPM); tpm >= 0 {
			b.tpm.sync(tpm, now)
			// The estimate must fit in what is left — or, so that a call
			// larger than the whole limit is not refused for ever, the
			// bucket must be full (nothing used or held this minute), as a
			// lone call passes a budget.
			if tpm == 0 || b.tpm.tokens <= 0 || float64(est) > b.tpm.tokens && !b.tpm.full() {
				return 0, rateLimited(rl.Scope, "tokens", tpm, b.tpm.until(min(float64(est), float64(tpm))))
			}
		}
		if rpm := limit(rl.RPM); rpm >= 0 {
			b.rpm.sync(rpm, now)
			if b.rpm.tokens < 1 {
				return 0, rateLimited(rl.Scope, "requests", rpm, b.rpm.until(1))
			}
		}
	}
	for i, rl := range lims {
		b := bs[i]
		if limit(rl.RPM) >= 0 {
			b.rpm.tokens--
		}
		if limit(rl.TPM) >= 0 {
			held = est
			b.tpm.tokens -= float64(held)
		}
	}
	return held, nil
}

// charge takes tokens from every TPM bucket that applies to p; negative
// tokens give back what an admitted call held beyond what it used.
func (l *limiter) charge(p auth.Principal, tokens int64, now time.Time) {
	if tokens == 0 {
		return
	}
	lims := rateLimitsOf(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, rl := range lims {
		if tpm := limit(rl.TPM); tpm >= 0 {
			b := l.get(rl.ID, now)
			b.tpm.sync(tpm, now)
			b.tpm.tokens -= float64(tokens)
		}
	}
}

// get returns the key's buckets, making room when the map is full. Called
// with l.mu held.
func (l *limiter) get(key string, now time.Time) *keyBuckets {
	kb := l.m[key]
	if kb != nil {
		return kb
	}
	if len(l.m) >= maxBuckets {
		for k, v := range l.m {
			v.rpm.sync(v.rpm.limit, now)
			v.tpm.sync(v.tpm.limit, now)
			if v.rpm.full() && v.tpm.full() {
				delete(l.m, k)
			}
		}
		if len(l.m) >= maxBuckets {
			// Everything is busy: forgetting all is crude but bounded,
			// and errs towards admitting.
			l.m = map[string]*keyBuckets{}
		}
	}
	kb = &keyBuckets{}
	l.m[key] = kb
	return kb
}

func rateLimited(scope, what string, limit int64, wait time.Duration) error {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	whose := "this key"
	switch scope {
	case "user":
		whose = "this key's owner (all their keys and sessions together)"
	case "team":
		whose = "this key's team (all its keys together)"
	}
	return &apperr.Error{Kind: apperr.KindRateLimited, RetryAfterSeconds: secs,
		Message: "Rate limit exceeded: " + whose + " may use " + strconv.FormatInt(limit, 10) + " " + what +
			" per minute. Try again in " + strconv.Itoa(secs) + " s."}
}
