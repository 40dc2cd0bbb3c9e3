package dbtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cluster is a throwaway PostgreSQL server: trust auth, loopback only,
// durability off (it holds nothing worth keeping).
type cluster struct {
	dir      string // temp dir holding data/, pg.log and the socket
	bin      string // directory of initdb and pg_ctl
	url      string
	asPG     bool      // commands run as the postgres user via su
	watchdog *exec.Cmd // stops the server if this process dies first
}

// startCluster initialises and starts a cluster on a free port.
func startCluster() (*cluster, error) {
	bin, err := findServerBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "keygate-pg-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	c := &cluster{dir: dir, bin: bin}
	// initdb refuses to run as root; as root, run as postgres and hand it
	// the directory.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("chown %s: %w", dir, err)
		}
		c.asPG = true
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run(2*time.Minute, filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off "+
		"-c full_page_writes=off -c max_connections=200", port, dir)
	if out, err := c.run(time.Minute, filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "pg.log"),
		"-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "pg.log"))
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %w: %s %s", err, out, log)
	}
	c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	c.startWatchdog()
	if err := probe(c.url, 10*time.Second); err != nil {
		c.stop()
		return nil, fmt.Errorf("throwaway cluster does not answer: %w", err)
	}
	return c, nil
}

// stop shuts the server down, removes its files and ends the watchdog.
func (c *cluster) stop() {
	_, _ = c.run(time.Minute, filepath.Join(c.bin, "pg_ctl"), "-D", filepath.Join(c.dir, "data"), "-m", "fast", "-w", "stop")
	_ = os.RemoveAll(c.dir)
	if c.watchdog != nil && c.watchdog.Process != nil {
		_ = c.watchdog.Process.Kill()
		_ = c.watchdog.Wait()
	}
}

// startWatchdog starts a shell that waits for this process to exit and
// then stops the server, so a crashed or timed-out test binary leaves no
// postgres behind. It runs in its own session (so ^C to the test's group
// does not kill it first) with no inherited stdout (so go test does not
// wait for it).
func (c *cluster) startWatchdog() {
	stop := c.command(filepath.Join(c.bin, "pg_ctl"), "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "stop")
	script := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; %s >/dev/null 2>&1; rm -rf %s",
		os.Getpid(), shellJoin(stop), shellQuote(c.dir))
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err == nil {
		c.watchdog = cmd
	}
}

// command returns argv for a server command, wrapped in su when running as
// root.
func (c *cluster) command(argv ...string) []string {
	if c.asPG {
		return []string{"su", "postgres", "-s", "/bin/sh", "-c", shellJoin(argv)}
	}
	return argv
}

func (c *cluster) run(timeout time.Duration, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := c.command(argv...)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	// pg_ctl's server redirects its output to pg.log; should anything
	// keep the pipe open anyway, do not wait for it forever.
	cmd.WaitDelay = time.Second
	return cmd.CombinedOutput()
}

// findServerBin returns the bin dir of the newest installed server.
func findServerBin() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(matches, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, m := range matches {
		if _, err := os.Stat(filepath.Join(filepath.Dir(m), "pg_ctl")); err == nil {
			return filepath.Dir(m), nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries (initdb) installed")
}

func versionOf(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}
