package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/store/gormstore"
)

// built is the running application plus what must be closed after it.
type built struct {
	*app.App
	dialect string
	close   func()
}

// buildApp opens the database and maps the configuration onto the
// application's options; this is the only place config meets the rest.
func buildApp(ctx context.Context, cfg *config.Config, log *slog.Logger, masterHash [sha256.Size]byte) (*built, error) {
	st, err := gormstore.Open(ctx, gormstore.Options{
		DatabaseURL: cfg.Database.URL, SQLitePath: cfg.SQLitePath(),
		MaxOpenConns: cfg.Database.MaxOpenConns, MaxIdleConns: cfg.Database.MaxIdleConns,
		ConnMaxLifetime: cfg.Database.ConnMaxLifetime, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	a, err := app.New(app.Options{
		Store: st, Logger: log, MasterKeyHash: masterHash,
		TrustedProxies: cfg.Server.TrustedProxies, MaxBodyBytes: cfg.Server.MaxBodyBytes,
	})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return &built{App: a, dialect: st.Dialect(), close: func() { _ = st.Close() }}, nil
}
