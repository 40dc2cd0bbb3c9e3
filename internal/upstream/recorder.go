package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// Recording limits: each attempt gets recordTimeout; transient failures
// are retried recordAttempts times with a growing pause.
const (
	recordTimeout  = 10 * time.Second
	recordAttempts = 3
	recordBackoff  = 200 * time.Millisecond
)

// recorder writes spend entries off the request path with a fixed number
// of workers reading a bounded queue, in batches when the store has
// transactions.
type recorder struct {
	spend   SpendRecorder
	onSpend func(ctx context.Context, keyHash, userID string)
	log     *slog.Logger

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool
	q      chan store.SpendEntry
	// stopping is closed when Close begins, releasing senders waiting for
	// room so that Close can take the lock.
	stopping chan struct{}
	stopOnce sync.Once
	// lastFull is when "queue full" was last logged (unix ns), so that an
	// overload logs once in a while rather than per request.
	lastFull atomic.Int64
	wg       sync.WaitGroup
	// ctx is cancelled when Close gives up waiting, so that workers stop
	// retrying and exit.
	ctx    context.Context
	cancel context.CancelFunc
}

func newRecorder(s SpendRecorder, onSpend func(context.Context, string, string), log *slog.Logger, queue, workers int) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{spend: s, onSpend: onSpend, log: log, q: make(chan store.SpendEntry, queue), stopping: make(chan struct{}),
		ctx: ctx, cancel: cancel}
	r.wg.Add(workers)
	for range workers {
		go r.work()
	}
	return r
}

// maxBatch bounds how many queued entries one transaction writes.
const maxBatch = 256

// txStore is implemented by stores that can run several writes in one
// transaction (store.Store, and so *gormstore.Store). The recorder then
// writes whatever has queued up in one commit: on SQLite every commit is
// an fsync that holds the only connection, so one per entry caps
// throughput at the disk's sync rate and stalls the key lookups of other
// requests behind it.
type txStore interface {
	Tx(ctx context.Context, fn func(store.Store) error) error
}

func (r *recorder) work() {
	defer r.wg.Done()
	batch := make([]store.SpendEntry, 0, maxBatch)
	for e := range r.q {
		batch = append(batch[:0], e)
	fill:
		for len(batch) < maxBatch {
			select {
			case e, ok := <-r.q:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		r.recordBatch(r.ctx, batch)
	}
}

// recordBatch writes batch in one transaction when the store allows it.
// Each entry's write is its own savepoint, so a reused response id rolls
// back only itself and is written again under a fresh id. If the
// transaction fails, the entries are written one by one, and a conflict
// then means "already committed" (the failure may have followed the
// commit), never a reason to write again.
func (r *recorder) recordBatch(base context.Context, batch []store.SpendEntry) {
	tx, ok := r.spend.(txStore)
	if !ok || len(batch) == 1 {
		for _, e := range batch {
			r.record(base, e, true)
		}
		return
	}
	ctx, cancel := context.WithTimeout(base, recordTimeout)
	written := make([]store.SpendEntry, 0, len(batch))
	err := tx.Tx(ctx, func(s store.Store) error {
		written = written[:0]
		for _, e := range batch {
			err := s.RecordSpend(ctx, e)
			if errors.Is(err, store.ErrConflict) {
				r.log.Warn("upstream: response id already recorded; recording under a new id", "request_id", e.RequestID)
				e.RequestID = e.RequestID + "-" + uuid.NewString()
				err = s.RecordSpend(ctx, e)
			}
			if err != nil {
				return err
			}
			written = append(written, e)
		}
		return nil
	})
	cancel()
	if err != nil {
		r.log.Warn("upstream: batched spend write failed; writing entries one by one", "entries", len(batch), "err", err)
		for _, e := range batch {
			r.record(base, e, false)
		}
		return
	}
	if r.onSpend == nil {
		return
	}
	type owner struct{ key, user string }
	seen := make(map[owner]bool, len(written))
	for _, e := range written {
		if o := (owner{e.KeyHash, e.UserID}); !seen[o] {
			seen[o] = true
			r.onSpend(base, o.key, o.user)
		}
	}
}

// enqueue hands e to the workers. When the queue is full (the database
// writes slower than answers arrive) it waits for room: that slows the
// end of this response, but spend is never dropped, and the workers keep
// writing whole batches, which is the fastest the database can take it.
// Once Close has begun, e is written here.
func (r *recorder) enqueue(e store.SpendEntry) {
	r.mu.RLock()
	if !r.closed {
		select {
		case r.q <- e:
			r.mu.RUnlock()
			return
		default:
		}
		r.warnFull()
		select {
		case r.q <- e:
			r.mu.RUnlock()
			return
		case <-r.stopping:
		}
	}
	r.mu.RUnlock()
	r.record(context.Background(), e, true)
}

// fullWarnEvery spaces out the "queue full" warnings.
const fullWarnEvery = 10 * time.Second

func (r *recorder) warnFull() {
	now, last := time.Now().UnixNano(), r.lastFull.Load()
	if now-last >= int64(fullWarnEvery) && r.lastFull.CompareAndSwap(last, now) {
		r.log.Warn("upstream: spend queue full; responses wait for the database to catch up", "queue", cap(r.q))
	}
}

// record writes e, retrying transient failures. A conflict on the first
// attempt (when fresh) means the upstream reused a response id for a new
// answer, so the entry gets a fresh id; otherwise it means an earlier
// attempt was committed after all, and nothing more is written.
func (r *recorder) record(base context.Context, e store.SpendEntry, fresh bool) {
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(base, recordTimeout)
		err := r.spend.RecordSpend(ctx, e)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, store.ErrConflict) && attempt == 1 && fresh:
			r.log.Warn("upstream: response id already recorded; recording under a new id", "request_id", e.RequestID)
			e.RequestID = e.RequestID + "-" + uuid.NewString()
			continue
		case errors.Is(err, store.ErrConflict):
		case attempt < recordAttempts && base.Err() == nil:
			r.log.Warn("upstream: record spend failed; retrying", "request_id", e.RequestID, "attempt", attempt, "err", err)
			t := time.NewTimer(recordBackoff * time.Duration(attempt*attempt))
			select {
			case <-t.C:
			case <-base.Done():
			}
			t.Stop()
			continue
		default:
			r.log.Error("upstream: spend lost", "request_id", e.RequestID, "key", e.KeyHash, "user_id", e.UserID,
				"model", e.Model, "spend", e.Spend, "err", err)
			return
		}
		if r.onSpend != nil {
			r.onSpend(base, e.KeyHash, e.UserID)
		}
		return
	}
}

// close stops accepting work and waits for the queue to drain or ctx to
// end; on ctx's end in-flight writes are cancelled.
func (r *recorder) close(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.stopping) })
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.q)
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		r.cancel()
		return nil
	case <-ctx.Done():
		left := len(r.q)
		r.cancel() // the workers fail the rest fast, logging each entry
		<-done
		return fmt.Errorf("upstream: spend queue not drained (%d entries lost): %w", left, ctx.Err())
	}
}
