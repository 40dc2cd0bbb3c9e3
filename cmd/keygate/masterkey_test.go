package main

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGeneratedMasterKeySurvivesRestart: the master key Keygate generates
// on a first start keeps working after a restart (the README's curl recipe
// must not break the next day), its raw value is printed once — on the
// first start only — and neither the data directory nor the database ever
// holds it; deleting the stored hash is how it is rotated.
func TestGeneratedMasterKeySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	vars := func() map[string]string { return map[string]string{"KEYGATE_DATA_DIR": dir} }
	base, out, stop := startServer(t, vars())
	m := regexp.MustCompile(`master key:\s+(sk-[0-9a-f]+)`).FindStringSubmatch(out.String())
	require.Len(t, m, 2, out.String())
	key := m[1]
	code, _ := get(t, base+"/user/list", key)
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, stop())

	base, out2, stop := startServer(t, vars())
	require.NotContains(t, out2.String(), key, "the raw key is printed on the first start only")
	require.Contains(t, out2.String(), "generated on the first start", out2.String())
	require.Contains(t, out2.String(), filepath.Join(dir, masterKeyFile), "the banner says where the hash is and so how to rotate it")
	code, _ = get(t, base+"/user/list", key)
	require.Equal(t, http.StatusOK, code, "the generated key still works after a restart")
	code, _ = get(t, base+"/user/list", "sk-not-the-master-key")
	require.Equal(t, http.StatusUnauthorized, code)
	require.NoError(t, stop())

	// Nothing on disk holds the raw key: only its hash is kept.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		require.NotContains(t, string(b), key, "%s holds the raw master key", e.Name())
		require.NotContains(t, string(b), strings.TrimPrefix(key, "sk-"), "%s holds the raw master key", e.Name())
	}
	st, err := os.Stat(filepath.Join(dir, masterKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// Rotating: delete the stored hash and restart; a new key is printed
	// and the old one stops working.
	require.NoError(t, os.Remove(filepath.Join(dir, masterKeyFile)))
	base, out3, _ := startServer(t, vars())
	m = regexp.MustCompile(`master key:\s+(sk-[0-9a-f]+)`).FindStringSubmatch(out3.String())
	require.Len(t, m, 2, out3.String())
	require.NotEqual(t, key, m[1])
	code, _ = get(t, base+"/user/list", key)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = get(t, base+"/user/list", m[1])
	require.Equal(t, http.StatusOK, code)
}

// The banner's URL is how to reach Keygate from this machine; when it
// listens on every interface the banner says so instead of implying
// localhost only, and on the loopback default it prints the real address.
func TestBannerSaysWhereItListens(t *testing.T) {
	lookup, environ := envOf(map[string]string{"LITELLM_MASTER_KEY": "sk-Zq8vR2mK7pX4nW9tL3bY6cF1hJ5dG0sA"})
	cfg, err := loadConfig("serve", nil, env{lookup: lookup, environ: environ})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:4100", cfg.Server.Addr, "loopback, beside LiteLLM's 4000")
	mk, err := loadMasterKey(cfg)
	require.NoError(t, err)

	var out strings.Builder
	base := announce(&out, "http", "127.0.0.1:4100", cfg, mk, "sqlite", time.Millisecond)
	require.Equal(t, "http://127.0.0.1:4100", base)
	require.NotContains(t, out.String(), "every network interface")

	for _, addr := range []string{"[::]:4100", "0.0.0.0:4100"} {
		out.Reset()
		announce(&out, "http", addr, cfg, mk, "sqlite", time.Millisecond)
		require.Contains(t, out.String(), "listening:   "+addr+", on every network interface", addr)
	}
}
