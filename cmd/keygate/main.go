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
	"runtime/debug"
	"syscall"
)

// defaultGCPercent is the collector's pacing unless GOGC is set. Keygate's
// live heap is a few MiB, so at Go's default of 100 a collection runs every
// few MiB of allocation and marks the whole heap each time: under load that
// was 4–5 µs of the ~33 µs of CPU a cached /auth/verify costs over HTTP
// (bench/README.md, "Collector pacing"). At 400 the heap may grow to five
// times the live data (tens of MiB under load) before a collection, which
// is cheap next to the proxy it guards. GOGC and GOMEMLIMIT still win.
const defaultGCPercent = 400

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
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
