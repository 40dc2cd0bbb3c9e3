package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

	"github.com/keygate/keygate/internal/testutil/dbtest"
)

// These tests run the real keygate binary (built from cmd/keygate) as an
// identity provider sees it: a process configured by environment and YAML,
// spoken to over HTTP. With PostgreSQL two processes share the database,
// and deprovisioning through one must reach the other's cache.

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// keygateBinary builds cmd/keygate once per test run.
func keygateBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keygate-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "keygate")
		out, err := exec.Command("go", "build", "-o", binaryPath, "github.com/keygate/keygate/cmd/keygate").CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	require.NoError(t, binaryErr)
	return binaryPath
}

const scimMasterKey = "sk-scim-binary-master-key"

// scimConfig maps IdP groups to roles (sso.role_mapping, which SCIM
// reuses).
const scimConfig = `sso:
  role_mapping:
    claim: groups
    map: {llm-admins: proxy_admin, llm-users: internal_user}
    default_role: internal_user
`

var readyLine = regexp.MustCompile(`Keygate is ready on (http://\S+)`)

// runKeygate starts the binary with env and returns its base URL; it is
// stopped with SIGTERM when the test ends.
func runKeygate(t *testing.T, env map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keygate.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(scimConfig), 0o600))
	cmd := exec.Command(keygateBinary(t), "serve", "--config", cfg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "KEYGATE_ADDR=127.0.0.1:0", "KEYGATE_DATA_DIR=" + dir,
		"LITELLM_MASTER_KEY=" + scimMasterKey, "KEYGATE_SECRET=scim-binary-secret-0123456789", "KEYGATE_LOG_LEVEL=warn"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	base := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				base <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case b := <-base:
		return b
	case <-done:
		t.Fatalf("keygate exited before it was ready:\n%s", stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("keygate did not become ready:\n%s", stderr.String())
	}
	return ""
}

type client struct {
	t    *testing.T
	base string
	http *http.Client
}

// call sends a JSON body (nil for none) and returns status and decoded
// JSON (nil when the body is empty).
func (c client) call(method, path, token string, body any) (int, map[string]any) {
	c.t.Helper()
	var rdr io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(c.t, err)
		rdr = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rdr)
	require.NoError(c.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	if len(bytes.TrimSpace(raw)) == 0 {
		return resp.StatusCode, nil
	}
	var m map[string]any
	require.NoError(c.t, json.Unmarshal(raw, &m), "%s %s: %s", method, path, raw)
	return resp.StatusCode, m
}

func (c client) must(status int, method, path, token string, body any) map[string]any {
	c.t.Helper()
	got, m := c.call(method, path, token, body)
	require.Equal(c.t, status, got, "%s %s: %v", method, path, m)
	return m
}

func (c client) verify(key string) int {
	c.t.Helper()
	code, _ := c.call(http.MethodGet, "/auth/verify", key, nil)
	return code
}

// waitVerify polls /auth/verify until it answers want, and returns how
// long that took. The bound (10 s) is far below the 30 s cache TTL, so a
// pass proves the invalidation travelled; the time is reported, not
// asserted (the machines are shared and noisy).
func (c client) waitVerify(key string, want int) time.Duration {
	c.t.Helper()
	start := time.Now()
	for {
		if c.verify(key) == want {
			return time.Since(start)
		}
		if time.Since(start) > 10*time.Second {
			c.t.Fatalf("%s/auth/verify did not answer %d within 10 s", c.base, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func scimUser(userName string, extra map[string]any) map[string]any {
	m := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": userName}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func scimPatch(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
}

func TestSCIMLifecycleBinarySQLite(t *testing.T) {
	t.Parallel()
	a := client{t: t, base: runKeygate(t, nil), http: &http.Client{Timeout: 30 * time.Second}}
	scimLifecycle(t, a, nil)
}

// TestSCIMLifecycleBinaryPostgres runs two keygate processes on one
// PostgreSQL database: provisioning goes to the first, and the second,
// whose cache already holds the user's key, must refuse it after
// deactivation.
func TestSCIMLifecycleBinaryPostgres(t *testing.T) {
	t.Parallel()
	dsn := dbtest.PostgresURL(t)
	env := map[string]string{"DATABASE_URL": dsn}
	a := client{t: t, base: runKeygate(t, env), http: &http.Client{Timeout: 30 * time.Second}}
	b := client{t: t, base: runKeygate(t, env), http: &http.Client{Timeout: 30 * time.Second}}
	scimLifecycle(t, a, &b)
}

func scimLifecycle(t *testing.T, a client, b *client) {
	// A proxy admin makes the IdP's token.
	tok := a.must(http.StatusOK, http.MethodPost, "/key/generate", scimMasterKey, map[string]any{"key_type": "scim", "key_alias": "scim-okta"})["key"].(string)
	sc := func(status int, method, path string, body any) map[string]any {
		t.Helper()
		return a.must(status, method, "/scim/v2"+path, tok, body)
	}

	// create (after Okta's look-up) and list with a filter
	q := "/Users?filter=" + url.QueryEscape(`userName eq "ada@example.com"`)
	require.EqualValues(t, 0, sc(http.StatusOK, http.MethodGet, q, nil)["totalResults"])
	id := sc(http.StatusCreated, http.MethodPost, "/Users", scimUser("Ada@Example.com", map[string]any{"externalId": "00u-ada",
		"name": map[string]any{"givenName": "Ada", "familyName": "Lovelace"}}))["id"].(string)
	list := sc(http.StatusOK, http.MethodGet, q, nil)
	require.EqualValues(t, 1, list["totalResults"])
	require.Equal(t, id, list["Resources"].([]any)[0].(map[string]any)["id"])
	sc(http.StatusConflict, http.MethodPost, "/Users", scimUser("ADA@example.com", nil))

	// update by PUT and by PATCH
	put := sc(http.StatusOK, http.MethodPut, "/Users/"+id, scimUser("ada@example.com", map[string]any{"externalId": "00u-ada",
		"displayName": "Ada King", "active": true}))
	require.Equal(t, "Ada King", put["displayName"])
	p := sc(http.StatusOK, http.MethodPatch, "/Users/"+id, scimPatch(map[string]any{"op": "Replace", "path": "name.familyName", "value": "Lovelace"}))
	require.Equal(t, "Lovelace", p["name"].(map[string]any)["familyName"])

	// group with members; the role follows the mapped group
	g := sc(http.StatusCreated, http.MethodPost, "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "llm-users", "members": []any{map[string]any{"value": id}}})
	require.Len(t, g["members"], 1)
	info := a.must(http.StatusOK, http.MethodGet, "/user/info?user_id="+url.QueryEscape(id), scimMasterKey, nil)
	require.Equal(t, "internal_user", userRole(info), "llm-users maps to internal_user")

	// The person's key works on every instance (and is now cached there).
	key := a.must(http.StatusOK, http.MethodPost, "/key/generate", scimMasterKey, map[string]any{"user_id": id})["key"].(string)
	require.Equal(t, http.StatusOK, a.verify(key))
	if b != nil {
		require.Equal(t, http.StatusOK, b.verify(key))
		require.Equal(t, http.StatusOK, b.verify(key)) // answered from the cache
	}

	// deactivate
	sc(http.StatusOK, http.MethodPatch, "/Users/"+id, scimPatch(map[string]any{"op": "replace", "value": map[string]any{"active": false}}))
	require.Equal(t, http.StatusUnauthorized, a.verify(key), "refused at once where the change was made")
	if b != nil {
		took := b.waitVerify(key, http.StatusUnauthorized)
		t.Logf("deactivation reached the second instance's /auth/verify after %v", took)
	}

	// reactivate
	sc(http.StatusOK, http.MethodPatch, "/Users/"+id, scimPatch(map[string]any{"op": "Replace", "path": "active", "value": "True"}))
	require.Equal(t, http.StatusOK, a.verify(key))
	if b != nil {
		b.waitVerify(key, http.StatusOK)
	}

	// delete
	sc(http.StatusNoContent, http.MethodDelete, "/Users/"+id, nil)
	sc(http.StatusNotFound, http.MethodGet, "/Users/"+id, nil)
	require.Equal(t, http.StatusUnauthorized, a.verify(key))
	if b != nil {
		b.waitVerify(key, http.StatusUnauthorized)
	}

	// The audit log names the token for every change.
	audit := a.must(http.StatusOK, http.MethodGet, "/audit?page_size=100", scimMasterKey, nil)
	raw, _ := json.Marshal(audit)
	for _, action := range []string{"scim.user.created", "scim.user.deactivated", "scim.user.reactivated", "scim.user.deleted", "scim.group.created"} {
		require.Contains(t, string(raw), action)
	}
	require.True(t, strings.Contains(string(raw), "key:"), "the actor is the scim key")
}

func userRole(info map[string]any) string {
	if ui, ok := info["user_info"].(map[string]any); ok {
		r, _ := ui["user_role"].(string)
		return r
	}
	r, _ := info["user_role"].(string)
	return r
}
