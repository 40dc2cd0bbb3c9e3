package upstream_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/apikey"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/internal/testutil/syncbuf"
	"github.com/keygate/keygate/internal/upstream"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const upstreamKey = "sk-upstream-secret"

// testPrices are the prices the tests configure, per million tokens.
func testPrices() map[string]upstream.Price {
	return map[string]upstream.Price{
		"gpt-test":   {InputPerMillion: 2, OutputPerMillion: 8},
		"embed-test": {InputPerMillion: 0.5},
	}
}

func cost(model string, prompt, completion int64) float64 {
	p := testPrices()[model]
	return float64(prompt)*p.InputPerMillion/1e6 + float64(completion)*p.OutputPerMillion/1e6
}

// env is Keygate's forwarding path over real parts: a SQLite store, the
// real API-key authenticator, the proxy on a loopback server and the fake
// upstream on another, with the OpenAI SDK as the client.
type env struct {
	t      testing.TB
	st     *gormstore.Store
	ka     *auth.KeyAuthenticator
	up     *fakeUpstream
	upSrv  *httptest.Server
	px     *upstream.Proxy
	srv    *httptest.Server
	tr     *http.Transport
	client *openai.Client
	logs   *syncbuf.Buffer

	userID, teamID string
	key            string // raw key of the user, limited to gpt-test and embed-test
	keyHash        string
	spent          chan string // request ids, after OnSpend

	closeOnce sync.Once
}

type envConfig struct {
	key     func(*store.Key)
	options func(*upstream.Options)
	// upstreamURL overrides the fake (an address nobody listens on).
	upstreamURL string
	// keepCache: OnSpend does not invalidate the key cache.
	keepCache bool
	// databaseURL selects PostgreSQL instead of a fresh SQLite file.
	databaseURL string
}

func newEnv(t testing.TB, cfg envConfig) *env {
	t.Helper()
	ctx := context.Background()
	so := gormstore.Options{SQLitePath: dbtest.SQLitePath(t)}
	if cfg.databaseURL != "" {
		so = gormstore.Options{DatabaseURL: cfg.databaseURL}
	}
	st, err := gormstore.Open(ctx, so)
	require.NoError(t, err)
	now := time.Now().UTC()
	e := &env{t: t, st: st, up: newFakeUpstream(), userID: "u-eng", teamID: "t-core", spent: make(chan string, 100), logs: &syncbuf.Buffer{}}
	require.NoError(t, st.CreateUser(ctx, &store.User{ID: e.userID, Email: "eng@example.com", Role: string(rbac.RoleInternalUser),
		CreatedAt: now, UpdatedAt: now}))
	require.NoError(t, st.CreateTeam(ctx, &store.Team{ID: e.teamID, Alias: "core", CreatedAt: now, UpdatedAt: now}))
	require.NoError(t, st.PutMembership(ctx, store.Membership{TeamID: e.teamID, UserID: e.userID, Role: string(rbac.TeamRoleUser), CreatedAt: now}))
	e.key, e.keyHash = e.createKey(func(k *store.Key) {
		k.TeamID = e.teamID
		k.Models = []string{"gpt-test", "embed-test"}
		if cfg.key != nil {
			cfg.key(k)
		}
	})
	e.ka = auth.NewKeyAuthenticator(auth.KeyAuthOptions{Store: st})
	e.upSrv = httptest.NewServer(e.up)
	target := e.upSrv.URL
	if cfg.upstreamURL != "" {
		target = cfg.upstreamURL
	}
	u, err := url.Parse(target)
	require.NoError(t, err)
	o := upstream.Options{
		Target: u, UpstreamKey: upstreamKey, Timeout: 5 * time.Second,
		Authenticator: auth.Chain{e.ka}, Decide: service.Decide, Spend: st, Prices: testPrices(),
		OnSpend: func(_ context.Context, keyHash, userID string) {
			// What the wiring does: forget cached principals so the new
			// spend counts at the next request.
			if !cfg.keepCache {
				e.ka.Cache().Invalidate(keyHash)
				e.ka.Cache().InvalidateUser(userID)
			}
			select {
			case e.spent <- keyHash:
			default:
			}
		},
		Logger:        slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		SessionCookie: "keygate_session",
	}
	if cfg.options != nil {
		cfg.options(&o)
	}
	e.px, err = upstream.New(o)
	require.NoError(t, err)
	e.srv = httptest.NewServer(e.px)
	e.tr = &http.Transport{}
	e.client = e.sdk(e.key)
	t.Cleanup(e.close)
	return e
}

// sdk returns an OpenAI client that calls Keygate with key.
func (e *env) sdk(key string, opts ...option.RequestOption) *openai.Client {
	base := []option.RequestOption{option.WithBaseURL(e.srv.URL + "/v1/"), option.WithAPIKey(key),
		option.WithMaxRetries(0), option.WithHTTPClient(&http.Client{Transport: e.tr})}
	c := openai.NewClient(append(base, opts...)...)
	return &c
}

// createKey stores a new key of the env's user and returns it raw and
// hashed.
func (e *env) createKey(mod func(*store.Key)) (string, string) {
	e.t.Helper()
	raw, err := apikey.Generate(nil)
	require.NoError(e.t, err)
	now := time.Now().UTC()
	k := &store.Key{Hash: apikey.Hash(raw), KeyName: apikey.KeyName(raw), UserID: e.userID, CreatedAt: now, UpdatedAt: now}
	if mod != nil {
		mod(k)
	}
	require.NoError(e.t, e.st.CreateKey(context.Background(), k))
	return raw, k.Hash
}

// close tears everything down in order: client, proxy server, proxy
// (drains the spend queue), upstream, store.
func (e *env) close() {
	e.closeOnce.Do(func() {
		e.tr.CloseIdleConnections()
		e.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(e.t, e.px.Close(ctx))
		e.upSrv.Close()
		require.NoError(e.t, e.st.Close())
	})
}

// waitSpent waits for n OnSpend calls.
func (e *env) waitSpent(n int) {
	e.t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-e.spent:
		case <-time.After(10 * time.Second):
			e.t.Fatalf("spend %d of %d not recorded within 10 s", i+1, n)
		}
	}
}

// spendOf lists the spend entries of a key.
func (e *env) spendOf(keyHash string) []store.SpendEntry {
	e.t.Helper()
	es, _, err := e.st.ListSpend(context.Background(), store.SpendFilter{KeyHash: keyHash, Page: store.Page{Limit: 1000}})
	require.NoError(e.t, err)
	return es
}

// post sends a raw request to the proxy.
func (e *env) post(ctx context.Context, path, key, body string, hdr map[string]string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Transport: e.tr}).Do(req)
	require.NoError(e.t, err)
	return resp
}
