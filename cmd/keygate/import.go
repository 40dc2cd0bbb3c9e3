package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/internal/litellmimport"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

// importLiteLLM is `keygate import-litellm --from <LiteLLM DATABASE_URL>
// [--dry-run] [--sso-issuer URL] [--strict-roles] [--config FILE]`: it
// reads LiteLLM's PostgreSQL tables and writes them into the database
// Keygate's own configuration names (DATABASE_URL, else the SQLite file),
// printing what it did or, with --dry-run, what it would do — a dry run
// neither creates nor migrates Keygate's database. Running Keygate
// replicas see imported keys at once and changed ones within the
// verification cache TTL (30 s).
func importLiteLLM(ctx context.Context, args []string, e env, stdout io.Writer) error {
	fs := flag.NewFlagSet("import-litellm", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	from := fs.String("from", "", "LiteLLM's DATABASE_URL (PostgreSQL)")
	dry := fs.Bool("dry-run", false, "print what would change and write nothing")
	issuer := fs.String("sso-issuer", "", "carry LiteLLM's sso_user_id as an SSO link to this issuer (your IdP's issuer URL)")
	strict := fs.Bool("strict-roles", false, "import unknown LiteLLM roles as internal_user_viewer instead of internal_user")
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
	// Read LiteLLM first: a wrong --from fails before Keygate's database
	// is touched.
	src, err := litellmimport.Read(ctx, *from)
	if err != nil {
		return fmt.Errorf("import-litellm: %w", err)
	}
	log := newLogger(cfg.Log, stdout)
	opts := gormstore.Options{DatabaseURL: cfg.Database.URL, SQLitePath: cfg.SQLitePath(), Logger: log,
		Timeout: cfg.Database.Timeout, AcquireTimeout: cfg.Database.AcquireTimeout}
	imp := litellmimport.Options{DryRun: *dry, SSOIssuer: *issuer, StrictRoles: *strict}
	var rep litellmimport.Report
	apply := func(st store.Store) error {
		var err error
		rep, err = litellmimport.Apply(ctx, src, st, imp)
		return err
	}
	if *dry {
		err = gormstore.DryRun(ctx, opts, apply)
	} else {
		if err := prepareDataDir(cfg, log); err != nil {
			return fmt.Errorf("import-litellm: %w", err)
		}
		var st *gormstore.Store
		st, err = gormstore.Open(ctx, opts)
		if err != nil {
			return fmt.Errorf("import-litellm: open Keygate's database: %w", err)
		}
		defer func() { _ = st.Close() }()
		err = apply(st)
	}
	if err != nil {
		return fmt.Errorf("import-litellm: %w", err)
	}
	rep.Print(stdout)
	return nil
}
