package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/internal/ratelog"
)

// serve runs the HTTP server until ctx is cancelled, then drains
// connections for up to the shutdown timeout. When ready is not nil the
// bound address is sent on it once the server accepts connections (tests
// use port 0).
func serve(ctx context.Context, cfg *config.Config, stdout io.Writer, ready chan<- string) error {
	start := time.Now()
	log := newLogger(cfg.Log, stdout)
	if err := prepareDataDir(cfg, log); err != nil {
		return err
	}
	mk, err := loadMasterKey(cfg)
	if err != nil {
		return err
	}
	if mk.source == masterConfigured && weakMasterKey(mk.raw) {
		log.Warn("the master key is weak (short, or a well-known example value); it is still accepted, but anyone who guesses it " +
			"is proxy_admin: set LITELLM_MASTER_KEY to sk- followed by 32 or more random characters")
	}
	// Listen first: links are derived from the bound address when
	// PROXY_BASE_URL is not set.
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (KEYGATE_ADDR): %w", cfg.Server.Addr, err)
	}
	public := publicBase(cfg, ln.Addr().String())
	a, err := buildApp(ctx, cfg, log, mk.hash, public)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer a.close()
	if cfg.URLs.ProxyBaseURL == nil {
		log.Warn("PROXY_BASE_URL is not set: links in e-mail and answers and the SSO redirect URI use the listen address; "+
			"set PROXY_BASE_URL to the URL users reach Keygate at", "base", public)
	}
	bgctx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	a.Run(bgctx)
	defer func() { stopBackground(); a.Wait() }()

	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		ReadTimeout:       cfg.Server.ReadTimeout,
		WriteTimeout:      cfg.Server.WriteTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Requests must outlive the shutdown signal: they are drained, not
		// cancelled (a cancelled context would cut every stream and spend
		// write in flight).
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	scheme := "http"
	if cfg.TLSEnabled() {
		scheme = "https"
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	errc := make(chan error, 1)
	go func() {
		if cfg.TLSEnabled() {
			errc <- srv.ServeTLS(ln, cfg.Server.TLSCertFile, cfg.Server.TLSKeyFile)
			return
		}
		errc <- srv.Serve(ln)
	}()
	addr := ln.Addr().String()
	base := announce(stdout, scheme, addr, cfg, mk, a.dialect, time.Since(start))
	if cfg.URLs.ProxyBaseURL == nil {
		fmt.Fprintf(stdout, "  links:       %s (PROXY_BASE_URL is not set; mailed links and the SSO redirect URI use the listen address)\n", public)
	}
	if cfg.Auth.UIPassword == "" && !cfg.Auth.PasswordLoginDisabled && a.sessions {
		if cfg.URLs.ProxyBaseURL != nil {
			base = public
		}
		if err := firstRunLink(ctx, a.Service(), base, stdout); err != nil {
			log.Warn("first-run admin link", "err", err)
		}
	}
	log.Info("keygate ready", "addr", addr, "database", a.dialect, "startup_ms", time.Since(start).Milliseconds())
	// Start-up (migrations, configuration) leaves megabytes of garbage
	// that, with the collector's headroom (gcHeadroom), would stay resident
	// until load arrives: collect it and hand the pages back now, off the
	// path to readiness.
	go debug.FreeOSMemory()
	if ready != nil {
		ready <- addr
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	drain(log, cfg.Server, srv, a)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// drain shuts the server down in the order a load balancer needs:
// readiness answers 503 (and keep-alive ends) for ShutdownDelay while
// everything is still served, then the listener closes and in-flight
// requests and streams get up to ShutdownTimeout to finish, then work
// that outlives requests (the spend queue) is flushed.
func drain(log *slog.Logger, sc config.Server, srv *http.Server, a *built) {
	log.Info("shutting down: readiness is now false", "delay", sc.ShutdownDelay.String(), "drain", sc.ShutdownTimeout.String())
	a.SetDraining()
	srv.SetKeepAlivesEnabled(false)
	time.Sleep(sc.ShutdownDelay)
	sctx, cancel := context.WithTimeout(context.Background(), sc.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown: in-flight requests did not finish in time; closing their connections",
			"timeout", sc.ShutdownTimeout.String(), "err", err)
		_ = srv.Close()
	}
	// The queue holds at most a few seconds of writes, and entries that
	// cannot be written go to the spool; give it its own bound so a slow
	// drain above does not leave it no time at all.
	fctx, fcancel := context.WithTimeout(context.Background(), max(sc.ShutdownTimeout, 10*time.Second))
	defer fcancel()
	if err := a.Shutdown(fctx); err != nil {
		log.Error("shutdown", "err", err)
	}
	log.Info("shut down")
	ratelog.Flush(context.Background(), log.Handler())
}

// masterSource says where the master key came from, for the banner.
type masterSource int

const (
	masterConfigured masterSource = iota // LITELLM_MASTER_KEY / KEYGATE_MASTER_KEY
	masterGenerated                      // generated by this start; raw value printed once
	masterStored                         // generated by an earlier start; only its hash is on disk
)

// masterKey is the admin API credential as the server holds it: its hash,
// and the raw value only when it was configured or has just been made.
type masterKey struct {
	hash   [sha256.Size]byte
	raw    string
	source masterSource
	file   string // where a generated key's hash is kept
}

// loadMasterKey returns the configured master key or, when none is
// configured, the one Keygate generated on its first start: its SHA-256 is
// kept in the data directory (mode 0600) so the key survives restarts
// (scripts and the README's recipe keep working), while the raw value is
// printed once and never written anywhere. Deleting the file rotates it.
func loadMasterKey(cfg *config.Config) (masterKey, error) {
	if cfg.Auth.MasterKey != "" {
		return masterKey{hash: sha256.Sum256([]byte(cfg.Auth.MasterKey)), raw: cfg.Auth.MasterKey, source: masterConfigured}, nil
	}
	path := filepath.Join(cfg.Database.DataDir, masterKeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		mk := masterKey{source: masterStored, file: path}
		h, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(h) != sha256.Size {
			return masterKey{}, fmt.Errorf("%s does not hold a SHA-256 in hex: delete it to generate a new master key, or set LITELLM_MASTER_KEY", path)
		}
		copy(mk.hash[:], h)
		return mk, nil
	case !errors.Is(err, os.ErrNotExist):
		return masterKey{}, fmt.Errorf("read the master key's hash: %w", err)
	}
	var r [24]byte
	if _, err := rand.Read(r[:]); err != nil {
		return masterKey{}, fmt.Errorf("generate master key: %w", err)
	}
	raw := "sk-" + hex.EncodeToString(r[:])
	mk := masterKey{hash: sha256.Sum256([]byte(raw)), raw: raw, source: masterGenerated, file: path}
	if err := os.MkdirAll(cfg.Database.DataDir, 0o700); err != nil {
		return masterKey{}, fmt.Errorf("create the data directory %s (KEYGATE_DATA_DIR) for the master key's hash: %w", cfg.Database.DataDir, err)
	}
	// O_EXCL: two processes starting at once on one data directory must
	// not each print a key while only one hash is kept.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return masterKey{}, fmt.Errorf("store the master key's hash (or set LITELLM_MASTER_KEY): %w", err)
	}
	_, werr := f.WriteString(hex.EncodeToString(mk.hash[:]) + "\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(path)
		return masterKey{}, fmt.Errorf("store the master key's hash in %s: %w", path, err)
	}
	return mk, nil
}

func announce(w io.Writer, scheme, addr string, cfg *config.Config, mk masterKey, dialect string, took time.Duration) string {
	host, port, _ := net.SplitHostPort(addr)
	all := host == "" || host == "::" || host == "0.0.0.0"
	if all {
		host = "localhost"
	}
	base := fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(host, port))
	db := "SQLite " + cfg.SQLitePath()
	if dialect == "postgres" {
		db = "PostgreSQL"
	}
	fmt.Fprintf(w, "Keygate is ready on %s (database: %s, started in %d ms)\n", base, db, took.Milliseconds())
	if all {
		// The URL above is how to reach it from this machine; say plainly
		// that other machines can too.
		fmt.Fprintf(w, "  listening:   %s, on every network interface (KEYGATE_ADDR)\n", addr)
	}
	fmt.Fprintf(w, "  health:      %s/health/readiness\n", base)
	switch mk.source {
	case masterGenerated:
		fmt.Fprintf(w, "  master key:  %s\n", mk.raw)
		fmt.Fprintf(w, "               (generated now and shown only this once: copy it. Only its SHA-256 is kept, in %s;\n", mk.file)
		fmt.Fprintln(w, "               it stays valid across restarts. Or set LITELLM_MASTER_KEY to choose one)")
	case masterStored:
		fmt.Fprintf(w, "  master key:  the one generated on the first start and printed then (its hash is in %s;\n", mk.file)
		fmt.Fprintln(w, "               lost it? delete that file and restart to print a new one, or set LITELLM_MASTER_KEY)")
	default:
		fmt.Fprintln(w, "  master key:  the value of LITELLM_MASTER_KEY / KEYGATE_MASTER_KEY")
	}
	fmt.Fprintf(w, "  web UI:      %s/ui/\n", base)
	fmt.Fprintf(w, "  try:         curl -H 'Authorization: Bearer <master key>' %s/user/list\n", base)
	return base
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	switch c.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if w == nil {
		w = os.Stdout
	}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	// An outage makes every request fail alike: keep repeated warnings and
	// errors to a few per kind and window, with a count of the rest.
	return slog.New(ratelog.New(h, ratelog.Options{}))
}
