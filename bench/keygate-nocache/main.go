// Command keygate-nocache serves Keygate exactly as internal/app wires it,
// except that the verification cache keeps answers for one nanosecond, so
// every /auth/verify reads the key, its owner and memberships from the
// database. bench/load.sh uses it for the "cache miss" figure of
// DESIGN.md, which the production binary cannot show: its cache TTL is
// deliberately not configurable, and every key, known or unknown, is
// cached after its first use. It is a benchmark tool, never a server to
// deploy.
//
//	DATABASE_URL=postgres://... LITELLM_MASTER_KEY=sk-... keygate-nocache 127.0.0.1:PORT
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/store/gormstore"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "keygate-nocache:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return errors.New("usage: keygate-nocache HOST:PORT (env DATABASE_URL, LITELLM_MASTER_KEY)")
	}
	master := os.Getenv("LITELLM_MASTER_KEY")
	if master == "" {
		return errors.New("LITELLM_MASTER_KEY is not set")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Pool sizes as cmd/keygate's defaults (KEYGATE_DB_MAX_OPEN_CONNS=20,
	// KEYGATE_DB_MAX_IDLE_CONNS=10), so the figure is the binary's.
	st, err := gormstore.Open(ctx, gormstore.Options{DatabaseURL: os.Getenv("DATABASE_URL"),
		SQLitePath: "keygate-nocache.db", MaxOpenConns: 20, MaxIdleConns: 10, Logger: log})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer st.Close()
	a, err := app.New(ctx, app.Options{Store: st, Logger: log, MasterKeyHash: sha256.Sum256([]byte(master)),
		MaxBodyBytes: 1 << 20, CacheTTL: time.Nanosecond})
	if err != nil {
		return fmt.Errorf("wire app: %w", err)
	}
	bg, stopBackground := context.WithCancel(ctx)
	a.Run(bg)
	defer a.Wait()
	defer stopBackground() // runs before Wait
	srv := &http.Server{Addr: os.Args[1], Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
