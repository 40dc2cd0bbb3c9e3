package config

import (
	"os"
	"path/filepath"
	"testing"
)

// load runs Load with env as the whole environment.
func load(t *testing.T, path string, env map[string]string) (*Config, error) {
	t.Helper()
	environ := make([]string, 0, len(env))
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	return Load(path, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}, environ)
}

// writeYAML writes body to a temporary config file and returns its path.
func writeYAML(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keygate.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
