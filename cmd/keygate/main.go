// Command keygate runs the Keygate auth sidecar and its admin subcommands.
//
//	keygate [serve] [--config file.yaml]   run the server (default)
//	keygate check-config [--config ...]    validate configuration and exit
//
// main only wires the process to run, which takes its arguments,
// environment and output explicitly so tests can drive it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal the default action is back: a second
		// Ctrl-C or SIGTERM ends the process without waiting for the drain.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Environ(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "keygate:", err)
		stop()
		os.Exit(1)
	}
}
