package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/keygate/keygate/config"
)

// Files Keygate keeps in the data directory (SQLite only), readable by
// its own user alone: the database holds key hashes and sessions, the
// secret encrypts the signing keys, the master key's hash admits admins.
var dataFiles = []string{"keygate.db", "keygate.db-wal", "keygate.db-shm", "keygate.secret", masterKeyFile}

// prepareDataDir makes the SQLite data directory (0700) and the database
// file (0600) before SQLite opens it, so neither is ever readable by
// others, and tightens files an older release left world-readable. A data
// directory the operator chose is used as it is, with a warning if others
// may read it.
//
// An install that still has keygate.db in the working directory (the old
// default) keeps using it, with a warning, rather than starting afresh.
func prepareDataDir(cfg *config.Config, log *slog.Logger) error {
	if cfg.Database.URL != "" {
		return nil
	}
	dir := cfg.Database.DataDir
	if dir == config.Default().Database.DataDir && !exists(filepath.Join(dir, "keygate.db")) && exists("keygate.db") {
		log.Warn("using keygate.db in the working directory (the old default); move it and keygate.secret into "+dir+
			" or set KEYGATE_DATA_DIR=. to keep them here", "data_dir", ".")
		cfg.Database.DataDir, dir = ".", "."
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create the data directory %s (KEYGATE_DATA_DIR): %w", dir, err)
		}
	case err != nil:
		return fmt.Errorf("data directory %s (KEYGATE_DATA_DIR): %w", dir, err)
	case !st.IsDir():
		return fmt.Errorf("data directory %s (KEYGATE_DATA_DIR) is not a directory", dir)
	case st.Mode().Perm()&0o077 != 0 && filepath.Clean(dir) != ".":
		log.Warn("the data directory is accessible to other users; chmod 700 it", "data_dir", dir, "mode", st.Mode().Perm().String())
	}
	for _, name := range dataFiles {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				log.Warn("cannot make a data file private", "file", p, "err", err)
			} else {
				log.Info("made a data file private (mode 0600)", "file", p)
			}
		}
	}
	db := filepath.Join(dir, "keygate.db")
	f, err := os.OpenFile(db, os.O_RDWR|os.O_CREATE, 0o600) // SQLite gives its -wal and -shm files the database's mode
	if err != nil {
		return fmt.Errorf("create %s: %w", db, err)
	}
	return f.Close()
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// wellKnownMasterKeys are example values from LiteLLM's and others'
// documentation that scripts copy verbatim.
var wellKnownMasterKeys = []string{"sk-1234", "sk-12345", "sk-123456", "sk-1234567890", "sk-admin", "sk-master", "sk-master-key",
	"sk-test", "sk-litellm", "sk-password", "sk-secret", "sk-changeme", "sk-change-me", "sk-my-master-key"}

// weakMasterKey: short (under 20 characters after "sk-"), all one kind of
// character, or a documented example. Keygate keeps accepting such keys
// (LiteLLM users have them in scripts) and says so at start.
func weakMasterKey(key string) bool {
	for _, k := range wellKnownMasterKeys {
		if strings.EqualFold(key, k) {
			return true
		}
	}
	rest := strings.TrimPrefix(key, "sk-")
	if len(rest) < 20 {
		return true
	}
	digits, letters := true, true
	for _, r := range rest {
		digits = digits && r >= '0' && r <= '9'
		letters = letters && ((r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'))
	}
	return digits || letters
}

// masterKeyFile holds the SHA-256 (hex) of a master key Keygate generated
// itself, so that key keeps working across restarts; the raw key is
// printed once and never stored.
const masterKeyFile = "master-key.sha256"
