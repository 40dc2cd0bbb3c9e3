package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/internal/spool"
	"github.com/keygate/keygate/store"
)

// Recording limits. A batch write gets recordTimeout (the store bounds
// each statement far below it); a batch that fails because the database
// is unavailable goes to the backlog, which is replayed with a pause
// growing from replayMin to replayMax, or at once when a write succeeds
// again.
const (
	recordTimeout  = 30 * time.Second
	conflictTries  = 3
	replayMin      = 100 * time.Millisecond
	replayMax      = 2 * time.Second
	maxMemBacklog  = 1 << 20
	spoolDirName   = "spend-spool"
	rejectsDirName = "spend-rejected"
)

// maxBatch bounds how many entries one transaction writes.
const maxBatch = 256

// recorder writes spend entries off the request path. Workers take
// whatever has queued up, up to maxBatch, and write it in one transaction
// (group commit: on SQLite every commit holds the only writer connection,
// so one per entry would cap throughput and stall other writes).
//
// Acknowledged usage is never dropped. An entry the database cannot take
// now (unavailable, timed out) goes to the backlog: a spool on local disk
// (fsync'd before the worker moves on) when a directory is configured,
// else memory. The backlog is replayed when the database is back; writes
// are idempotent by request id, so an entry whose commit went unanswered
// and was spooled anyway is not counted twice. An entry the database
// refuses outright (a "poison" entry) is isolated by splitting its batch,
// logged with everything needed to bill it by hand, and set aside in a
// second spool; the healthy entries of its batch are recorded.
type recorder struct {
	spend   SpendRecorder
	onSpend func(ctx context.Context, keyHash, userID string)
	// settled is told the request ids of entries the recorder is done
	// with: written (their spend is in the budget figures now), set aside
	// or lost. Parked entries are settled when replayed.
	settled func(ids ...string)
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
	workers  sync.WaitGroup

	// backlog holds entries waiting for the database: the spool, or mem
	// when no directory is configured (then they do not survive a
	// restart, and the log says so).
	backlog *spool.Spool[spoolEntry]
	rejects *spool.Spool[spoolEntry]
	memMu   sync.Mutex
	mem     []store.SpendEntry
	// failing: the last write failed for want of a database; lastErr is
	// why (for the log).
	failing atomic.Bool
	lastErr atomic.Pointer[error]
	wake    chan struct{}
	// replayStop ends the replayer; replayDone is closed when it has.
	replayStop chan struct{}
	replayDone chan struct{}
	// replayMu serialises replay passes (the loop's and Close's last one).
	replayMu sync.Mutex

	closeOnce sync.Once
	closeErr  error

	// ctx is cancelled when Close gives up waiting, so that writes in
	// flight end and their entries go to the backlog.
	ctx    context.Context
	cancel context.CancelFunc
}

// spoolEntry is a spend entry as the spool stores it (a stable format).
type spoolEntry struct {
	RequestID        string    `json:"request_id"`
	KeyHash          string    `json:"key_hash,omitempty"`
	UserID           string    `json:"user_id,omitempty"`
	TeamID           string    `json:"team_id,omitempty"`
	Model            string    `json:"model,omitempty"`
	PromptTokens     int64     `json:"prompt_tokens"`
	CompletionTokens int64     `json:"completion_tokens"`
	Spend            float64   `json:"spend"`
	CreatedAt        time.Time `json:"created_at"`
	// HoldID: the call's shared budget hold, ended when the entry is
	// recorded (absent in spools written before holds were shared).
	HoldID string `json:"hold_id,omitempty"`
	// Error says why an entry was set aside (rejects only).
	Error string `json:"error,omitempty"`
}

func toSpool(e store.SpendEntry) spoolEntry {
	return spoolEntry{RequestID: e.RequestID, KeyHash: e.KeyHash, UserID: e.UserID, TeamID: e.TeamID, Model: e.Model,
		PromptTokens: e.PromptTokens, CompletionTokens: e.CompletionTokens, Spend: e.Spend, CreatedAt: e.CreatedAt, HoldID: e.HoldID}
}

func (s spoolEntry) entry() store.SpendEntry {
	return store.SpendEntry{RequestID: s.RequestID, KeyHash: s.KeyHash, UserID: s.UserID, TeamID: s.TeamID, Model: s.Model,
		PromptTokens: s.PromptTokens, CompletionTokens: s.CompletionTokens, Spend: s.Spend, CreatedAt: s.CreatedAt, HoldID: s.HoldID}
}

// newRecorder starts the workers and the replayer. With dir set, the
// backlog is a spool in dir/spend-spool (entries left there by an earlier
// run are replayed first) and refused entries go to dir/spend-rejected.
func newRecorder(s SpendRecorder, onSpend func(context.Context, string, string), settled func(ids ...string), log *slog.Logger,
	dir string, queue, workers int) (*recorder, error) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{spend: s, onSpend: onSpend, settled: settled, log: log, q: make(chan store.SpendEntry, queue), stopping: make(chan struct{}),
		wake: make(chan struct{}, 1), replayStop: make(chan struct{}), replayDone: make(chan struct{}), ctx: ctx, cancel: cancel}
	if dir != "" {
		var err error
		if r.backlog, err = spool.Open[spoolEntry](filepath.Join(dir, spoolDirName)); err != nil {
			cancel()
			return nil, fmt.Errorf("upstream: spend spool: %w", err)
		}
		if r.rejects, err = spool.Open[spoolEntry](filepath.Join(dir, rejectsDirName)); err != nil {
			cancel()
			return nil, fmt.Errorf("upstream: spend spool: %w", err)
		}
		if n := r.backlog.Len(); n > 0 {
			log.Info("upstream: replaying spend spooled by an earlier run", "entries", n, "dir", r.backlog.Dir())
		}
	}
	r.workers.Add(workers)
	for range workers {
		go r.work()
	}
	go r.replayLoop()
	return r, nil
}

func (r *recorder) work() {
	defer r.workers.Done()
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
		if left := r.write(r.ctx, batch); len(left) > 0 {
			r.park(left)
		} else if r.backlogLen() > 0 {
			r.poke() // the database is back: replay now, not after the pause
		}
	}
}

// transient reports whether err means "not now" rather than "never".
func transient(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// write records batch and returns the entries that could not be written
// for want of a database; those the database refused are set aside.
func (r *recorder) write(ctx context.Context, batch []store.SpendEntry) []store.SpendEntry {
	var err error
	for try := 1; try <= conflictTries; try++ {
		wctx, cancel := context.WithTimeout(ctx, recordTimeout)
		var done []store.SpendEntry
		done, err = r.spend.RecordSpendBatch(wctx, batch)
		cancel()
		if err == nil {
			r.failing.Store(false)
			r.recorded(done)
			r.settle(batch...)
			return nil
		}
		// A conflict: another replica stored one of these ids meanwhile;
		// a fresh attempt sees it.
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	if transient(err) || ctx.Err() != nil {
		r.failing.Store(true)
		r.lastErr.Store(&err)
		return batch
	}
	if len(batch) == 1 {
		r.setAside(batch[0], err)
		return nil
	}
	// Something in the batch is refused: split it until the culprit is
	// alone, so every other entry is still recorded.
	h := len(batch) / 2
	left := r.write(ctx, batch[:h])
	return append(left, r.write(ctx, batch[h:])...)
}

// recorded tells the wiring about the owners whose spend moved.
func (r *recorder) recorded(done []store.SpendEntry) {
	if r.onSpend == nil {
		return
	}
	type owner struct{ key, user string }
	seen := make(map[owner]bool, len(done))
	for _, e := range done {
		if o := (owner{e.KeyHash, e.UserID}); !seen[o] {
			seen[o] = true
			r.onSpend(r.ctx, o.key, o.user)
		}
	}
}

// setAside logs an entry the database refused, with what is needed to
// bill it by hand, and keeps it in the rejects spool.
// settle reports entries the recorder is done with.
func (r *recorder) settle(es ...store.SpendEntry) {
	if r.settled == nil || len(es) == 0 {
		return
	}
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.RequestID
	}
	r.settled(ids...)
}

func (r *recorder) setAside(e store.SpendEntry, err error) {
	defer r.settle(e)
	kept := "not kept (no data dir)"
	if r.rejects != nil {
		se := toSpool(e)
		se.Error = err.Error()
		if aerr := r.rejects.Append(se); aerr != nil {
			kept = "could not be kept: " + aerr.Error()
		} else {
			kept = r.rejects.Dir()
		}
	}
	r.log.Error("upstream: the database refused a spend entry; set aside", "request_id", e.RequestID, "key", e.KeyHash,
		"user_id", e.UserID, "team_id", e.TeamID, "model", e.Model, "prompt_tokens", e.PromptTokens,
		"completion_tokens", e.CompletionTokens, "spend", e.Spend, "created_at", e.CreatedAt, "kept", kept, "err", err)
}

// park puts entries the database could not take into the backlog.
func (r *recorder) park(es []store.SpendEntry) {
	defer r.poke()
	if r.backlog != nil {
		recs := make([]spoolEntry, len(es))
		for i, e := range es {
			recs[i] = toSpool(e)
		}
		err := r.backlog.Append(recs...)
		if err == nil {
			r.warnParked(len(es))
			return
		}
		r.log.Error("upstream: cannot spool spend to disk; keeping it in memory", "entries", len(es), "err", err)
	}
	r.memMu.Lock()
	room := maxMemBacklog - len(r.mem)
	kept := es[:min(len(es), max(room, 0))]
	r.mem = append(r.mem, kept...)
	r.memMu.Unlock()
	r.warnParked(len(kept))
	for _, e := range es[len(kept):] {
		r.lost(e, errors.New("in-memory spend backlog full"))
	}
}

func (r *recorder) warnParked(n int) {
	now, last := time.Now().UnixNano(), r.lastFull.Load()
	if now-last >= int64(fullWarnEvery) && r.lastFull.CompareAndSwap(last, now) {
		where := "memory (lost if Keygate stops first; set a data dir)"
		if r.backlog != nil {
			where = r.backlog.Dir()
		}
		var why error
		if e := r.lastErr.Load(); e != nil {
			why = *e
		}
		r.log.Warn("upstream: the database is unavailable; spend is kept until it is back", "entries", n, "kept_in", where, "err", why)
	}
}

func (r *recorder) lost(e store.SpendEntry, err error) {
	defer r.settle(e)
	r.log.Error("upstream: spend lost", "request_id", e.RequestID, "key", e.KeyHash, "user_id", e.UserID,
		"model", e.Model, "spend", e.Spend, "err", err)
}

func (r *recorder) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *recorder) backlogLen() int {
	n := 0
	if r.backlog != nil {
		n = r.backlog.Len()
	}
	r.memMu.Lock()
	n += len(r.mem)
	r.memMu.Unlock()
	return n
}

// healthy reports whether spend is being recorded: the last write
// succeeded and nothing waits in the backlog.
func (r *recorder) healthy() bool { return !r.failing.Load() && r.backlogLen() == 0 }

// replayLoop replays the backlog until Close.
func (r *recorder) replayLoop() {
	defer close(r.replayDone)
	pause := replayMin
	t := time.NewTimer(0) // at start: whatever an earlier run spooled
	defer t.Stop()
	for {
		select {
		case <-r.replayStop:
			return
		case <-r.wake:
		case <-t.C:
		}
		if r.backlogLen() == 0 {
			continue
		}
		if r.replay(r.ctx) {
			pause = replayMin
		} else {
			pause = min(2*pause, replayMax)
		}
		if r.backlogLen() > 0 {
			t.Reset(pause)
		}
	}
}

// replay writes the backlog, oldest first, and reports whether all of it
// got written. A spool segment is removed once all its entries are in
// the database; one interrupted half-way is replayed whole next time,
// which the idempotent write allows.
func (r *recorder) replay(ctx context.Context) bool {
	r.replayMu.Lock()
	defer r.replayMu.Unlock()
	r.memMu.Lock()
	mem := r.mem
	r.mem = nil
	r.memMu.Unlock()
	if left := r.writeAll(ctx, mem); len(left) > 0 {
		r.memMu.Lock()
		r.mem = append(left, r.mem...)
		r.memMu.Unlock()
		return false
	}
	if r.backlog == nil {
		return true
	}
	segs, err := r.backlog.Seal()
	if err != nil {
		r.log.Error("upstream: spend spool", "err", err)
		return false
	}
	for _, seg := range segs {
		recs, skipped, err := r.backlog.Read(seg)
		if err != nil {
			r.log.Error("upstream: cannot read the spend spool", "segment", seg, "err", err)
			return false
		}
		if skipped > 0 {
			r.log.Warn("upstream: skipped unreadable lines in the spend spool (a write torn by a crash)", "segment", seg, "lines", skipped)
		}
		es := make([]store.SpendEntry, len(recs))
		for i, rec := range recs {
			es[i] = rec.entry()
		}
		if left := r.writeAll(ctx, es); len(left) > 0 {
			return false
		}
		if err := r.backlog.Remove(seg, len(recs)); err != nil {
			r.log.Error("upstream: spend spool", "err", err)
			return false
		}
		r.log.Info("upstream: replayed spooled spend", "entries", len(recs))
	}
	return true
}

// writeAll writes es in batches; on the first batch the database cannot
// take, it stops and returns what is left.
func (r *recorder) writeAll(ctx context.Context, es []store.SpendEntry) []store.SpendEntry {
	for i := 0; i < len(es); i += maxBatch {
		if left := r.write(ctx, es[i:min(i+maxBatch, len(es))]); len(left) > 0 {
			return append(left, es[min(i+maxBatch, len(es)):]...)
		}
	}
	return nil
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
	for _, left := range r.write(context.Background(), []store.SpendEntry{e}) {
		r.lost(left, errors.New("the database is unavailable and the recorder is closed"))
	}
}

// fullWarnEvery spaces out the "queue full" and "spooling" warnings.
const fullWarnEvery = 10 * time.Second

func (r *recorder) warnFull() {
	now, last := time.Now().UnixNano(), r.lastFull.Load()
	if now-last >= int64(fullWarnEvery) && r.lastFull.CompareAndSwap(last, now) {
		r.log.Warn("upstream: spend queue full; responses wait for the database to catch up", "queue", cap(r.q))
	}
}

// close stops accepting work, waits for the queue to be written (or, once
// ctx ends, cancels the writes in flight, whose entries go to the
// backlog), makes one last replay attempt, and closes the spool. Entries
// still in the spool are replayed at the next start; entries in the
// memory backlog are lost, which the error reports. Later calls return
// the first call's result.
func (r *recorder) close(ctx context.Context) error {
	r.closeOnce.Do(func() { r.closeErr = r.shutdown(ctx) })
	return r.closeErr
}

func (r *recorder) shutdown(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.stopping) })
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.q)
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		r.workers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		r.cancel() // writes end now; their entries are parked
		<-done
	}
	close(r.replayStop)
	<-r.replayDone
	if r.backlogLen() > 0 && ctx.Err() == nil {
		r.replay(ctx)
	}
	r.cancel()
	var errs []error
	if r.backlog != nil {
		if n := r.backlog.Len(); n > 0 {
			r.log.Warn("upstream: spend stays spooled until the next start", "entries", n, "dir", r.backlog.Dir())
		}
		errs = append(errs, r.backlog.Close(), r.rejects.Close())
	}
	r.memMu.Lock()
	mem := r.mem
	r.mem = nil
	r.memMu.Unlock()
	for _, e := range mem {
		r.lost(e, errors.New("the database is unavailable and there is no spool directory"))
	}
	if len(mem) > 0 {
		errs = append(errs, fmt.Errorf("upstream: %d spend entries lost (the database is unavailable and there is no spool directory)", len(mem)))
	}
	return errors.Join(errs...)
}
