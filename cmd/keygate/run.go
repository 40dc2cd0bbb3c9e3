package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/keygate/keygate/config"
)

// env is how run reads the process environment.
type env struct {
	lookup  func(string) (string, bool)
	environ []string
}

// run dispatches the subcommand. Every subcommand loads and validates the
// configuration first, so a typo is reported before anything starts.
// Asking for help (-h, --help, help) prints the usage on stdout and
// succeeds.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), environ []string, stdout io.Writer) error {
	err := dispatch(ctx, args, lookup, environ, stdout)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, lookup func(string) (string, bool), environ []string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	e := env{lookup: lookup, environ: environ}
	switch cmd {
	case "serve":
		cfg, err := loadConfig("serve", args, e)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, stdout, nil)
	case "check-config":
		cfg, err := loadConfig("check-config", args, e)
		if err != nil {
			return err
		}
		return printConfig(cfg, stdout)
	case "import-litellm":
		return importLiteLLM(ctx, args, e, stdout)
	case "user":
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return flag.ErrHelp
		}
		if len(args) == 0 || args[0] != "create" {
			return fmt.Errorf("unknown command \"user %s\"\n%s", strings.Join(args, " "), usage)
		}
		return adminCommand(ctx, "user create", args[1:], e, stdout)
	case "invite":
		return adminCommand(ctx, "invite", args, e, stdout)
	case "healthcheck":
		return healthcheck(ctx, args, lookup, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage:
  keygate [serve] [--config FILE]        run the server (default)
  keygate check-config [--config FILE]   validate the configuration and print it (secrets redacted)
  keygate user create --email E [--role R] [--invite] [--send-email]
                                         create a user (default role internal_user); --invite prints an invitation link
  keygate invite --email E [--send-email]
                                         print a new invitation link for an existing user (supersedes older ones)
  keygate healthcheck [--url URL]        exit 0 if a local Keygate answers /health/liveliness (for containers)
  keygate import-litellm --from URL [--dry-run] [--sso-issuer URL] [--strict-roles] [--config FILE]
                                         copy users, teams, memberships and API keys from LiteLLM's database

Configuration comes from the environment (see README.md, "Configuration") and an optional YAML file.
`

func loadConfig(name string, args []string, e env) (*config.Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "YAML configuration file")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", name, err, usage)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%s: unexpected arguments %q\n%s", name, fs.Args(), usage)
	}
	cfg, err := config.Load(*path, e.lookup, e.environ)
	if err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

func printConfig(cfg *config.Config, w io.Writer) error {
	red := cfg.Redacted()
	keys := make([]string, 0, len(red))
	for k := range red {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintln(w, "configuration OK")
	for _, k := range keys {
		fmt.Fprintf(w, "  %s=%s\n", k, red[k])
	}
	return nil
}
