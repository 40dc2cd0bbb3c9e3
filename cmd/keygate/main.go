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
	"runtime"
	"syscall"
)

// gcHeadroom is garbage the collector may leave between cycles on top of
// Go's own pacing. Keygate's live heap is a few MiB, and at GOGC=100 a cycle
// then runs every few MiB of allocation and marks the whole heap: under
// load that was 4–5 µs of the ~33 µs of CPU a cached /auth/verify costs
// over HTTP (bench/README.md, "Collector headroom"). A pointer-free block of
// this size, allocated first and never written, counts as live heap to the
// pacer, so cycles come about gcHeadroom of allocation apart; it costs no
// resident memory (its pages are never touched) and no marking. Unlike a
// higher GOGC the extra is a constant: a live heap that grows (a login
// burst holds 19 MiB per password hash) is not multiplied. 8 MiB takes
// three quarters of the collector's work away at a live heap of 3 MiB
// (L/(L+headroom) of it is left) and raises the invalid-key flood's peak
// RSS by about its own size; 16 MiB took little more CPU away for twice
// the memory.
const gcHeadroom = 8 << 20

func main() {
	headroom := make([]byte, gcHeadroom)
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
	runtime.KeepAlive(headroom)
}
