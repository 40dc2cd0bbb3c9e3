package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/syncbuf"
)

const (
	nginxBinary = "/usr/sbin/nginx"
	njsModule   = "/usr/lib/nginx/modules/ngx_http_js_module.so"
)

// The examples' addresses, each written once in deploy/nginx/*.conf;
// renderNginxSite replaces them with the test's listeners.
const (
	exampleKeygate  = "server 127.0.0.1:4100;"
	exampleUpstream = "server 127.0.0.1:4001;"
	exampleListen   = "listen 8080;"
	exampleJSPath   = "js_path   /etc/nginx/njs/;"
)

// send makes one request through the proxy, without keep-alive surprises.
func send(t *testing.T, base, method, path string, hdr map[string]string, body string) (int, http.Header, []byte) {
	t.Helper()
	var rdr io.Reader
	if body != "" {
		rdr = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rdr)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 15 * time.Second}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, raw
}

// nginxSite is a committed example with the test's addresses in place of
// the example's, and the address nginx will listen on.
type nginxSite struct {
	conf   string
	listen string
	njs    bool
}

func renderNginxSite(t *testing.T, njs bool, keygateAddr, upstreamAddr string) nginxSite {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "deploy", "nginx"))
	require.NoError(t, err)
	name := "keygate.conf"
	if njs {
		name = "keygate-njs.conf"
	}
	raw, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	conf := string(raw)
	listen := freeLoopbackAddr(t)
	subst := []struct{ from, to string }{
		{exampleKeygate, "server " + keygateAddr + ";"},
		{exampleUpstream, "server " + upstreamAddr + ";"},
		{exampleListen, "listen " + listen + ";"},
	}
	if njs {
		// keygate.js is loaded from the repository, as committed.
		subst = append(subst, struct{ from, to string }{exampleJSPath, "js_path " + dir + "/;"})
	}
	for _, r := range subst {
		require.Equal(t, 1, strings.Count(conf, r.from), "deploy/nginx/%s must contain %q exactly once", name, r.from)
		conf = strings.Replace(conf, r.from, r.to, 1)
	}
	return nginxSite{conf: conf, listen: listen, njs: njs}
}

// freeLoopbackAddr finds a port nothing listens on right now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// startNginx runs nginx in the foreground with a prefix of its own (all
// temp paths inside it), checks the configuration first, waits until it
// accepts connections and returns its base URL. It is stopped when t ends.
func startNginx(t *testing.T, site nginxSite) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "keygate.conf"), []byte(site.conf), 0o600))
	head := ""
	if site.njs {
		head = "load_module " + njsModule + ";\n"
	}
	if os.Geteuid() == 0 {
		// Workers would otherwise run as nobody and could not use the
		// root-owned temp dir.
		head += "user root;\n"
	}
	main := fmt.Sprintf(`%sworker_processes 1;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path       %[2]s/proxy;
    fastcgi_temp_path     %[2]s/fastcgi;
    uwsgi_temp_path       %[2]s/uwsgi;
    scgi_temp_path        %[2]s/scgi;
    include %[2]s/keygate.conf;
}
`, head, dir)
	conf := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(conf, []byte(main), 0o600))
	args := []string{"-p", dir + "/", "-c", conf, "-e", "stderr", "-g", "daemon off; pid " + dir + "/nginx.pid;"}

	out, err := exec.Command(nginxBinary, append([]string{"-t", "-q"}, args...)...).CombinedOutput()
	require.NoError(t, err, "nginx -t rejects the configuration:\n%s\n--- keygate.conf as rendered ---\n%s", out, site.conf)

	var stderr syncbuf.Buffer
	cmd := exec.Command(nginxBinary, args...)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	// Its own process group, so cleanup reaches the workers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // graceful: finish requests, then exit
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("nginx stderr:\n%s", stderr.String())
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("nginx exited at start: %v\n%s", err, stderr.String())
		default:
		}
		c, err := net.DialTimeout("tcp", site.listen, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return "http://" + site.listen
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not accept connections on %s: %v\n%s", site.listen, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
