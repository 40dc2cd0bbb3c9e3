package gormstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/store"
)

// Limits and timings of Notify/Listen.
const (
	// MaxNotifyPayload is the largest payload Notify accepts. PostgreSQL
	// refuses payloads of 8000 bytes or more; the margin keeps us clear
	// of that whatever the server's build.
	MaxNotifyPayload = 7900
	// maxChannelLen is PostgreSQL's identifier limit (NAMEDATALEN-1); a
	// longer name would be truncated silently by LISTEN but not by
	// pg_notify, and the two would never meet.
	maxChannelLen = 63

	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 5 * time.Second
	// listenConnectTimeout bounds one connect + LISTEN attempt, so a
	// black-holed server costs a retry rather than a hung listener.
	listenConnectTimeout = 10 * time.Second
	// listenIdleCheck: after this long without a notification the
	// listener notifies itself (the default Options.ListenHeartbeat). A
	// connection dropped without a TCP reset (NAT timeout, failover), or
	// one that loses notifications, would otherwise wait forever and miss
	// every invalidation.
	listenIdleCheck = 30 * time.Second
	// listenPingTimeout bounds sending that probe.
	listenPingTimeout = 5 * time.Second
	// listenCloseTimeout bounds closing the connection after ctx ended.
	listenCloseTimeout = 2 * time.Second
)

// What Listen hands fn besides payloads (store.ListenSubscribed,
// store.ListenLost, and store.ListenAlive at each returned probe): before
// the first ResetAll, and from an Unheard to the next ResetAll,
// notifications are not heard.
const (
	ResetAll = store.ListenSubscribed
	Unheard  = store.ListenLost
)

// validChannel checks that channel is a plain identifier. LISTEN takes no
// parameters, so the name ends up in SQL text; restricting it to letters,
// digits and underscores (and quoting it anyway) rules out injection.
func validChannel(channel string) error {
	if channel == "" || len(channel) > maxChannelLen {
		return fmt.Errorf("gormstore: channel name must be 1..%d characters", maxChannelLen)
	}
	for _, c := range channel {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return fmt.Errorf("gormstore: channel %q: only letters, digits and underscores are allowed", channel)
		}
	}
	return nil
}

// Notify publishes payload on channel to every replica (PostgreSQL NOTIFY
// via pg_notify); on SQLite, which runs as a single instance, it only
// validates its arguments. Called on a Store bound to a transaction, the
// notification is delivered when the transaction commits and dropped if
// it rolls back, so listeners never act on a change that did not happen.
// Channels are database-wide: stores on different schemas of one database
// hear each other.
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	if err := validChannel(channel); err != nil {
		return fmt.Errorf("gormstore: notify: %w", err)
	}
	if len(payload) > MaxNotifyPayload {
		return fmt.Errorf("gormstore: notify %s: payload of %d bytes exceeds %d", channel, len(payload), MaxNotifyPayload)
	}
	if s.dialect != DialectPostgres {
		return nil
	}
	if err := s.conn(ctx).Exec("SELECT pg_notify(?, ?)", channel, payload).Error; err != nil {
		return fmt.Errorf("gormstore: notify %s: %w", channel, translate(err))
	}
	return nil
}

// Listen calls fn with the payload of every notification on channel until
// ctx ends, then returns nil. fn runs on Listen's goroutine, one call at a
// time; a slow fn delays later notifications but loses none.
//
// On PostgreSQL it holds a dedicated connection (same DSN, so the same
// search_path and credentials) outside the pool, doing LISTEN and waiting.
// When that connection fails it reconnects at once, then with backoff
// from 100 ms to 5 s, logging each failure; the backoff is cut short as
// soon as one of this store's own statements succeeds (the database is
// back: every moment away loses other replicas' invalidations). It calls
// fn(ResetAll) once after every subscription, the first included (what
// the caller cached before it may miss changes nobody told it of), and
// fn(Unheard) when a subscribed connection is lost. A listener that is
// idle notifies itself at its heartbeat (Options.ListenHeartbeat) and
// needs that notification back (then fn(store.ListenAlive)), so a silently
// dropped connection, or one that loses notifications, is noticed too.
//
// On SQLite there is only one instance and nothing to miss: Listen calls
// fn(ResetAll), waits for ctx and returns nil.
func (s *Store) Listen(ctx context.Context, channel string, fn func(payload string)) error {
	if err := validChannel(channel); err != nil {
		return fmt.Errorf("gormstore: listen: %w", err)
	}
	if fn == nil {
		return errors.New("gormstore: listen: nil callback")
	}
	if s.dialect != DialectPostgres {
		fn(ResetAll)
		<-ctx.Done()
		return nil
	}
	cfg, err := pgx.ParseConfig(s.dsn)
	if err != nil {
		// pgconn redacts the password in parse errors.
		return fmt.Errorf("gormstore: listen %s: %w", channel, err)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "keygate-listener"
	}

	minBackoff, maxBackoff := s.listenBackoff()
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		conn, err := s.listenConnect(ctx, cfg, channel)
		if ctx.Err() != nil {
			closeListenConn(conn)
			return nil
		}
		if err != nil {
			s.log.WarnContext(ctx, "notification listener cannot connect; retrying",
				"channel", channel, "attempt", attempt, "retry_in", backoff, "error", err)
			if !s.waitToReconnect(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		s.wake.down.Store(false)
		if attempt > 1 {
			s.log.InfoContext(ctx, "notification listener reconnected", "channel", channel, "attempt", attempt)
		}
		// Subscribed before the caller drops its cache, so no change
		// after the drop can go unheard.
		fn(ResetAll)
		connected := time.Now()
		err = s.listenLoop(ctx, conn, channel, fn)
		closeListenConn(conn)
		if ctx.Err() != nil {
			return nil
		}
		s.wake.down.Store(true)
		fn(Unheard)
		// A connection that lived a while starts the backoff afresh and
		// reconnects at once (a restarted server, a failover); one that
		// drops right after connecting (a flapping server) keeps growing
		// it, so we never hammer the server.
		if time.Since(connected) > 2*maxBackoff {
			backoff = minBackoff
			s.log.WarnContext(ctx, "notification listener lost its connection; reconnecting",
				"channel", channel, "error", err)
			continue
		}
		s.log.WarnContext(ctx, "notification listener lost its connection; reconnecting",
			"channel", channel, "retry_in", backoff, "error", err)
		if !s.waitToReconnect(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// waitToReconnect waits out the backoff d, cut short as soon as one of
// the store's own statements succeeds: the database is back, and every
// moment the listener stays away, invalidations from other replicas are
// lost. It reports false when ctx ends.
func (s *Store) waitToReconnect(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-s.wake.ch:
	}
	return true
}

// listenBackoff is the range of pauses between reconnection attempts
// (tests stretch it).
func (s *Store) listenBackoff() (time.Duration, time.Duration) {
	if s.listenPause[1] > 0 {
		return s.listenPause[0], s.listenPause[1]
	}
	return listenMinBackoff, listenMaxBackoff
}

// listenConnect opens the dedicated connection and subscribes it.
func (s *Store) listenConnect(ctx context.Context, cfg *pgx.ConnConfig, channel string) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, listenConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg.Copy())
	if err != nil {
		return nil, translate(err)
	}
	if _, err := conn.Exec(cctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		closeListenConn(conn)
		return nil, translate(err)
	}
	return conn, nil
}

// probePrefix starts the payload a listener sends itself to prove that
// notifications reach it; other listeners skip it like any line they do
// not know.
const probePrefix = "probe:"

// maxUnansweredProbes: this many probes in a row that did not come back
// count as a lost connection.
const maxUnansweredProbes = 2

// listenLoop delivers notifications until ctx ends (nil) or the
// connection fails (the error). After s.heartbeat without a notification
// it notifies itself on the channel: the probe's return is what proves the
// link alive (store.ListenAlive) — a ping would answer through a pooler or
// middlebox that loses notifications — and probes that do not return end
// the connection, so the caller is told (ListenLost) and the listener
// subscribes again.
func (s *Store) listenLoop(ctx context.Context, conn *pgx.Conn, channel string, fn func(string)) error {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	probe := probePrefix + hex.EncodeToString(nonce[:])
	unanswered := 0
	for {
		wctx, cancel := context.WithTimeout(ctx, s.heartbeat)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			if n == nil {
				continue
			}
			if n.Payload == probe {
				unanswered = 0
				fn(store.ListenAlive)
				continue
			}
			fn(n.Payload)
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Idle: the read timed out and the connection is still
			// usable. Check that notifications still arrive.
			if unanswered >= maxUnansweredProbes {
				return fmt.Errorf("%d probes sent on the channel did not come back: notifications are not delivered on this connection (a connection pooler in transaction mode does not carry LISTEN)", unanswered)
			}
			pctx, pcancel := context.WithTimeout(ctx, listenPingTimeout)
			_, perr := conn.Exec(pctx, "SELECT pg_notify($1, $2)", channel, probe)
			pcancel()
			if perr != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("idle probe: %w", translate(perr))
			}
			unanswered++
		default:
			return translate(err)
		}
	}
}

func closeListenConn(conn *pgx.Conn) {
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), listenCloseTimeout)
	defer cancel()
	_ = conn.Close(ctx) // the connection is being discarded either way
}
