package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/syncbuf"
)

// The tests in this file run the real keygate binary, built once per test
// process, so that signals and process exit are what a deployment sees.

var binary struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// keygateBinary builds ./cmd/keygate into a temporary directory once.
func keygateBinary(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "keygate-bin-")
		if err != nil {
			binary.err = err
			return
		}
		binary.path = filepath.Join(dir, "keygate")
		cmd := exec.Command("go", "build", "-o", binary.path, ".")
		binary.out, binary.err = cmd.CombinedOutput()
	})
	require.NoError(t, binary.err, "go build: %s", binary.out)
	return binary.path
}

// proc is a running keygate process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	out  *syncbuf.Buffer
	done chan error
}

// freeAddr returns a loopback address nobody listens on at the moment.
// startProcess runs the binary with vars (plus a free KEYGATE_ADDR) and
// waits until /health/liveliness answers.
func startProcess(t *testing.T, vars map[string]string, args ...string) *proc {
	t.Helper()
	bin := keygateBinary(t)
	addr := freeAddr(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "KEYGATE_ADDR=" + addr}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{t: t, cmd: cmd, base: "http://" + addr, out: &syncbuf.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	require.NoError(t, cmd.Start())
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.base + "/health/liveliness")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("keygate exited before it was up: %v\n%s", err, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("keygate did not come up\n%s", p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) { require.NoError(p.t, p.cmd.Process.Signal(sig)) }

// wait waits for the process to exit and returns its error.
func (p *proc) wait() error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(2 * time.Minute):
		p.t.Fatalf("keygate did not exit\n%s", p.out.String())
		return nil
	}
}

// call sends a JSON request with a bearer token.
func (p *proc) call(method, path, token, body string) (int, string) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, strings.NewReader(body))
	require.NoError(p.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(p.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// newUserKey creates a user with models via /user/new and returns its key.
func (p *proc) newUserKey(master, userID, extra string) string {
	p.t.Helper()
	code, body := p.call(http.MethodPost, "/user/new", master,
		fmt.Sprintf(`{"user_id":%q,"user_role":"internal_user"%s}`, userID, extra))
	require.Equal(p.t, http.StatusOK, code, body)
	m := regexp.MustCompile(`"key":"(sk-kg-[0-9A-Za-z]{28})"`).FindStringSubmatch(body)
	require.Len(p.t, m, 2, body)
	return m[1]
}

// sseStream is a streamed chat completion read line by line.
type sseStream struct {
	resp   *http.Response
	chunks chan string
	err    chan error
}

// stream starts a streamed chat completion and reads it in the background.
func (p *proc) stream(ctx context.Context, key, body string) *sseStream {
	p.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/v1/chat/completions", strings.NewReader(body))
	require.NoError(p.t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	require.NoError(p.t, err)
	require.Equal(p.t, http.StatusOK, resp.StatusCode)
	s := &sseStream{resp: resp, chunks: make(chan string, 100), err: make(chan error, 1)}
	go func() {
		defer resp.Body.Close()
		defer close(s.chunks)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				s.chunks <- d
			}
		}
		s.err <- sc.Err()
	}()
	return s
}

// isClosed reports whether err means the listener is gone: a refused
// connection, or one the kernel had queued when the listener closed.
func isClosed(err error) bool {
	return err != nil && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "EOF"))
}
