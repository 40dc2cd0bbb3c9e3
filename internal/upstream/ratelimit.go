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

// limitsOf returns the key's limits; -1 means none. A limit of 0 admits
// nothing, as in LiteLLM.
func limitsOf(p auth.Principal) (rpm, tpm int64) {
	rpm, tpm = -1, -1
	if p.Access == nil || p.KeyHash == "" {
		return rpm, tpm
	}
	if l := p.Access.RPMLimit; l != nil && *l >= 0 {
		rpm = *l
	}
	if l := p.Access.TPMLimit; l != nil && *l >= 0 {
		tpm = *l
	}
	return rpm, tpm
}

// admit takes one request from the key's RPM bucket and refuses while its
// TPM bucket is overdrawn.
//
// A call admitted under a TPM limit takes its estimate (est) from the
// bucket at once and returns how much it took: concurrent calls see what
// the ones before them may use, so a burst cannot all pass on one bucket
// that each alone would pass. charge settles it with the real tokens.
func (l *limiter) admit(p auth.Principal, now time.Time, prompt, output int64) (held int64, err error) {
	rpm, tpm := limitsOf(p)
	if rpm < 0 && tpm < 0 {
		return 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	kb := l.get(p.KeyHash, now)
	if tpm >= 0 {
		kb.tpm.sync(tpm, now)
		if kb.tpm.tokens <= 0 || tpm == 0 {
			return 0, rateLimited("tokens", tpm, kb.tpm.until(1))
		}
	}
	if rpm >= 0 {
		kb.rpm.sync(rpm, now)
		if kb.rpm.tokens < 1 {
			return 0, rateLimited("requests", rpm, kb.rpm.until(1))
		}
		kb.rpm.tokens--
	}
	if tpm >= 0 {
		held = prompt + output
		kb.tpm.tokens -= float64(held)
	}
	return held, nil
}

// charge takes tokens from the key's TPM bucket; negative tokens give
// back what an admitted call held beyond what it used.
func (l *limiter) charge(p auth.Principal, tokens int64, now time.Time) {
	_, tpm := limitsOf(p)
	if tpm < 0 || tokens == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	kb := l.get(p.KeyHash, now)
	kb.tpm.sync(tpm, now)
	kb.tpm.tokens -= float64(tokens)
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

func rateLimited(what string, limit int64, wait time.Duration) error {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return &apperr.Error{Kind: apperr.KindRateLimited, RetryAfterSeconds: secs,
		Message: "Rate limit exceeded: this key may use " + strconv.FormatInt(limit, 10) + " " + what +
			" per minute. Try again in " + strconv.Itoa(secs) + " s."}
}
