package scim_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/password"
	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const masterKey = "sk-scim-test-master-key"

// env is the real application (internal/app, wired as cmd wires it) over
// a real store; SCIM calls carry a real scim token made through the API.
type env struct {
	t     *testing.T
	store store.Store
	h     http.Handler
	token string // a scim key
}

var cheapArgon = password.Params{Memory: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// roleMap is the SSO role mapping the tests configure: SCIM reuses it.
var roleMap = sso.RoleMapping{Claim: "groups", Map: map[string]string{"llm-admins": "proxy_admin", "llm-users": "internal_user",
	"aad-obj-auditors": "proxy_admin_viewer"}, DefaultRole: "internal_user"}

func openDB(t *testing.T, name string) store.Store {
	t.Helper()
	o := gormstore.Options{Logger: slog.New(slog.DiscardHandler)}
	if name == "sqlite" {
		o.SQLitePath = dbtest.SQLitePath(t)
	} else {
		o.DatabaseURL = dbtest.PostgresURL(t)
	}
	st, err := gormstore.Open(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	a, err := app.New(t.Context(), app.Options{Store: st, Logger: slog.New(slog.DiscardHandler), MasterKeyHash: sha256.Sum256([]byte(masterKey)),
		Secret: "scim-test-secret-0123456789", Issuer: "http://keygate.test", PasswordParams: &cheapArgon, MaxBodyBytes: 1 << 20,
		BaseURL: "https://keygate.example", SSOPolicy: service.SSOPolicy{RoleMapping: roleMap}})
	require.NoError(t, err)
	e := &env{t: t, store: st, h: a.Handler()}
	r := e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"key_type": "scim", "key_alias": "scim-okta"})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	e.token = r.JSON(t)["key"].(string)
	return e
}

// eachDB runs fn against SQLite and PostgreSQL.
func eachDB(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) { fn(t, newEnv(t, openDB(t, name))) })
	}
}

type response struct {
	Code int
	Body *bytes.Buffer
	Hdr  http.Header
}

func (r response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body.Bytes(), &m), r.Body.String())
	return m
}

// do sends body (nil, a raw string, or a value encoded as JSON) with the
// SCIM media type.
func (e *env) do(method, path, token string, body any) response {
	e.t.Helper()
	var rdr io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rdr = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(e.t, err)
		rdr = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rdr)
	if rdr != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return response{Code: w.Code, Body: w.Body, Hdr: w.Header()}
}

// scim calls /scim/v2 with the scim token.
func (e *env) scim(method, path string, body any) response {
	e.t.Helper()
	return e.do(method, "/scim/v2"+path, e.token, body)
}

// ok asserts a status and returns the decoded body.
func (e *env) ok(r response, status int) map[string]any {
	e.t.Helper()
	require.Equal(e.t, status, r.Code, r.Body.String())
	if status == http.StatusNoContent {
		return nil
	}
	require.Equal(e.t, "application/scim+json", r.Hdr.Get("Content-Type"))
	return r.JSON(e.t)
}

// requireSCIMError asserts SCIM's error schema with status and scimType
// ("" for none).
func requireSCIMError(t *testing.T, r response, status int, scimType string) map[string]any {
	t.Helper()
	require.Equal(t, status, r.Code, r.Body.String())
	require.Equal(t, "application/scim+json", r.Hdr.Get("Content-Type"))
	m := r.JSON(t)
	require.Equal(t, []any{"urn:ietf:params:scim:api:messages:2.0:Error"}, m["schemas"], r.Body.String())
	require.Equal(t, fmt.Sprint(status), m["status"], "status is a string")
	require.NotEmpty(t, m["detail"])
	if scimType == "" {
		require.NotContains(t, m, "scimType")
	} else {
		require.Equal(t, scimType, m["scimType"], r.Body.String())
	}
	require.NotContains(t, m, "error", "not LiteLLM's body")
	require.NotContains(t, r.Body.String(), "goroutine")
	return m
}

// snapshot summarises everything SCIM could change, so a refused request
// can be shown to have changed nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	ctx := e.t.Context()
	all := store.Page{Limit: 1000}
	users, _, err := e.store.ListUsers(ctx, store.UserFilter{Page: all})
	require.NoError(e.t, err)
	teams, _, err := e.store.ListTeams(ctx, store.TeamFilter{Page: all})
	require.NoError(e.t, err)
	_, na, err := e.store.ListAudit(ctx, store.AuditFilter{Page: all})
	require.NoError(e.t, err)
	var b strings.Builder
	fmt.Fprintf(&b, "audit=%d\n", na)
	for _, u := range users {
		fmt.Fprintf(&b, "u %s %s %s %v %s %s %+v\n", u.ID, u.Email, u.Role, u.Disabled, u.Alias, u.ExternalID, u.Directory)
	}
	for _, tm := range teams {
		ms, err := e.store.ListMembershipsByTeam(ctx, tm.ID)
		require.NoError(e.t, err)
		fmt.Fprintf(&b, "t %s %s %s %v %d\n", tm.ID, tm.Alias, tm.ExternalID, tm.DirectoryManaged, len(ms))
	}
	return b.String()
}

// verify asks /auth/verify about key and returns the status.
func (e *env) verify(key string) int {
	e.t.Helper()
	return e.do(http.MethodGet, "/auth/verify", key, nil).Code
}

// userKey creates a key for a user through the management API.
func (e *env) userKey(userID string) string {
	e.t.Helper()
	r := e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": userID})
	require.Equal(e.t, http.StatusOK, r.Code, r.Body.String())
	return r.JSON(e.t)["key"].(string)
}

func user(userName string, extra map[string]any) map[string]any {
	m := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": userName, "active": true}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func patch(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
}

func group(name string, members ...string) map[string]any {
	ms := []map[string]any{}
	for _, m := range members {
		ms = append(ms, map[string]any{"value": m})
	}
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name, "members": ms}
}

// filterQ URL-encodes a filter.
func filterQ(f string) string { return "filter=" + urlEncode(f) }

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%x", h[:])
}

func sortStrings(s []string) { sort.Strings(s) }

func (e *env) rawRequest(method, path, body string) *http.Request {
	return httptest.NewRequest(method, path, strings.NewReader(body))
}

func (e *env) serve(r *http.Request) response {
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return response{Code: w.Code, Body: w.Body, Hdr: w.Header()}
}
