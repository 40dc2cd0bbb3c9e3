package dbtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// skipLog collects the tests RequireOrSkip skipped, for Main's summary.
//
// go test hides everything a passing package prints — stderr included —
// unless -v is given or it runs the package in the current directory, so
// "ok" would be all a reader of `go test ./...` sees while the browser,
// Hydra, Mailpit and nginx tests did not run. The summary therefore also
// goes to the go command's own stderr (see goCommandStderr).
type skipLog struct {
	mu      sync.Mutex
	inMain  bool
	entries []string
}

func (l *skipLog) start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inMain = true
}

func (l *skipLog) add(test, msg string) {
	line := fmt.Sprintf("SKIPPED: %s — %s", test, msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, line)
	if !l.inMain {
		// No summary will come (the package has no dbtest.Main): say it now.
		fmt.Fprintln(os.Stderr, "dbtest: "+line)
	}
}

// report prints the summary: to stderr, and to the go command's stderr
// when go test would otherwise throw it away (a passing package, not -v).
func (l *skipLog) report(code int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) == 0 {
		return
	}
	pkg := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	n := strconv.Itoa(len(l.entries)) + " test"
	if len(l.entries) > 1 {
		n += "s"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s: %s skipped for want of a real component (%s=1 makes this a failure):\n", pkg, n, EnvRequireAll)
	for _, e := range l.entries {
		b.WriteString("    " + e + "\n")
	}
	fmt.Fprint(os.Stderr, b.String())
	if code == 0 && !testing.Verbose() {
		if w := goCommandStderr(); w != nil {
			_, _ = w.WriteString(b.String())
			_ = w.Close()
		}
	}
}

// goCommandStderr opens the stderr of the go command that runs this test
// binary (Linux only), or returns nil. It is used only when that stderr is
// a terminal or a pipe: writing into a regular file through a second
// handle would overwrite what the go command writes next at its own
// offset.
func goCommandStderr() *os.File {
	ppid := os.Getppid()
	exe, err := os.Readlink("/proc/" + strconv.Itoa(ppid) + "/exe")
	if err != nil || filepath.Base(exe) != "go" {
		return nil
	}
	path := "/proc/" + strconv.Itoa(ppid) + "/fd/2"
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&(os.ModeCharDevice|os.ModeNamedPipe|os.ModeSocket) == 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil
	}
	return f
}
