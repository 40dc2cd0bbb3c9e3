package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/internal/litellmimport"
	"github.com/keygate/keygate/store/gormstore"
)

// importLiteLLM is `keygate import-litellm --from <LiteLLM DATABASE_URL>
// [--dry-run] [--config FILE]`: it reads LiteLLM's PostgreSQL tables and
// writes them into the database Keygate's own configuration names
// (DATABASE_URL, else the SQLite file), printing what it did or, with
// --dry-run, what it would do. Running Keygate replicas see imported keys
// at once and changed ones within the verification cache TTL (30 s).
func importLiteLLM(ctx context.Context, args []string, e env, stdout io.Writer) error {
	fs := flag.NewFlagSet("import-litellm", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	from := fs.String("from", "", "LiteLLM's DATABASE_URL (PostgreSQL)")
	dry := fs.Bool("dry-run", false, "print what would change and write nothing")
	path := fs.String("config", "", "YAML configuration file")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("import-litellm: %w\n%s", err, usage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("import-litellm: unexpected arguments %q\n%s", fs.Args(), usage)
	}
	if *from == "" {
		return errors.New("import-litellm: --from <LiteLLM DATABASE_URL> is required\n" + usage)
	}
	cfg, err := config.Load(*path, e.lookup, e.environ)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	st, err := gormstore.Open(ctx, gormstore.Options{DatabaseURL: cfg.Database.URL, SQLitePath: cfg.SQLitePath(),
		Logger: newLogger(cfg.Log, stdout), Timeout: cfg.Database.Timeout, AcquireTimeout: cfg.Database.AcquireTimeout})
	if err != nil {
		return fmt.Errorf("import-litellm: open Keygate's database: %w", err)
	}
	defer func() { _ = st.Close() }()
	rep, err := litellmimport.Import(ctx, *from, st, litellmimport.Options{DryRun: *dry})
	if err != nil {
		return fmt.Errorf("import-litellm: %w", err)
	}
	rep.Print(stdout)
	return nil
}
