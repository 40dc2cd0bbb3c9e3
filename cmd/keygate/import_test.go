package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/litellmimport/litellmtest"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

// TestImportLiteLLMCommand runs `keygate import-litellm` as an operator
// would, into the SQLite database that Keygate's configuration selects.
func TestImportLiteLLMCommand(t *testing.T) {
	from := litellmtest.NewSource(t)
	dir := t.TempDir()
	lookup, environ := envOf(map[string]string{"KEYGATE_DATA_DIR": dir})
	imp := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"import-litellm"}, args...), lookup, environ, &out)
		return out.String(), err
	}

	// A dry run neither creates nor migrates Keygate's database.
	out, err := imp("--from", from, "--dry-run", "--sso-issuer", "https://idp.example.com")
	require.NoError(t, err, out)
	require.Contains(t, out, "DRY RUN")
	require.Contains(t, out, "57 records would change.")
	_, statErr := os.Stat(filepath.Join(dir, "keygate.db"))
	require.ErrorIs(t, statErr, os.ErrNotExist, "--dry-run created Keygate's database")

	out, err = imp("--from", from, "--sso-issuer", "https://idp.example.com", "--strict-roles")
	require.NoError(t, err, out)
	require.Contains(t, out, "57 records changed.")
	require.Contains(t, out, "imported as internal_user_viewer (--strict-roles)")
	for _, secret := range litellmtest.Secrets() {
		require.NotContains(t, out, secret)
	}

	// Against an existing database, a dry run reports and writes nothing.
	out, err = imp("--from", from, "--dry-run")
	require.NoError(t, err, out)
	require.Contains(t, out, "records would change.")

	out, err = imp("--from", from, "--sso-issuer", "https://idp.example.com", "--strict-roles")
	require.NoError(t, err, out)
	require.Contains(t, out, "0 records changed.")

	st, err := gormstore.Open(context.Background(), gormstore.Options{SQLitePath: filepath.Join(dir, "keygate.db")})
	require.NoError(t, err)
	defer st.Close()
	k, err := st.GetKey(context.Background(), litellmtest.Hash(litellmtest.KeyAlice))
	require.NoError(t, err)
	require.Equal(t, "alice", k.UserID)
	_, n, err := st.ListUsers(context.Background(), store.UserFilter{})
	require.NoError(t, err)
	require.EqualValues(t, 17, n)
	u, err := st.GetUserBySSO(context.Background(), "https://idp.example.com", litellmtest.SSOAdminSubject)
	require.NoError(t, err)
	require.Equal(t, "sso-admin", u.ID)
}

func TestImportLiteLLMCommandErrors(t *testing.T) {
	lookup, environ := envOf(map[string]string{"KEYGATE_DATA_DIR": t.TempDir()})
	var out bytes.Buffer
	err := run(context.Background(), []string{"import-litellm"}, lookup, environ, &out)
	require.ErrorContains(t, err, "--from <LiteLLM DATABASE_URL> is required")
	err = run(context.Background(), []string{"import-litellm", "--from", "x", "extra"}, lookup, environ, &out)
	require.ErrorContains(t, err, "unexpected arguments")
	err = run(context.Background(), []string{"import-litellm", "--from", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"}, lookup, environ, &out)
	require.ErrorContains(t, err, "connect to the LiteLLM database")
}
