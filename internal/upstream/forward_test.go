package upstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/upstream"
	"github.com/keygate/keygate/store"
)

func chatParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
	}
}

func TestChatCompletionThroughSDK(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()

	resp, err := e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
	require.NoError(t, err)
	require.JSONEq(t, string(e.up.body()), resp.RawJSON(), "the SDK sees the upstream's answer unchanged")
	require.Equal(t, "Hello <there> & welcome", resp.Choices[0].Message.Content)

	reqs := e.up.requests()
	require.Len(t, reqs, 1)
	got := reqs[0]
	require.Equal(t, "/v1/chat/completions", got.Path)
	require.Equal(t, "Bearer "+upstreamKey, got.Header.Get("Authorization"))
	require.Equal(t, e.userID, got.Header.Get("X-Keygate-User-Id"))
	require.Equal(t, "internal_user", got.Header.Get("X-Keygate-User-Role"))
	require.Equal(t, e.keyHash, got.Header.Get("X-Keygate-Key-Id"))
	require.Equal(t, e.teamID, got.Header.Get("X-Keygate-Team-Id"))
	require.NotContains(t, headerDump(got.Header), e.key, "the client's key never reaches the upstream")
	require.Equal(t, "identity", got.Header.Get("Accept-Encoding"))

	e.waitSpent(1)
	es := e.spendOf(e.keyHash)
	require.Len(t, es, 1)
	require.Equal(t, "chatcmpl-1", es[0].RequestID, "the upstream's id names the entry")
	require.Equal(t, "gpt-test", es[0].Model)
	require.Equal(t, e.userID, es[0].UserID)
	require.Equal(t, e.teamID, es[0].TeamID)
	require.EqualValues(t, chatPrompt, es[0].PromptTokens)
	require.EqualValues(t, chatCompletion, es[0].CompletionTokens)
	require.InDelta(t, cost("gpt-test", chatPrompt, chatCompletion), es[0].Spend, 1e-12)

	u, err := e.st.GetUser(ctx, e.userID)
	require.NoError(t, err)
	require.InDelta(t, cost("gpt-test", chatPrompt, chatCompletion), u.Spend, 1e-12, "the user's running total moved")
}

func TestStreamingChatCompletion(t *testing.T) {
	e := newEnv(t, envConfig{})
	gate := make(chan struct{})
	e.up.setGate(gate)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	stream := e.client.Chat.Completions.NewStreaming(ctx, chatParams("gpt-test"))
	defer stream.Close()

	// The upstream sent chunk 1 and now waits until the client has it: a
	// proxy that buffered would deadlock here.
	first := make(chan openai.ChatCompletionChunk, 1)
	go func() {
		if stream.Next() {
			first <- stream.Current()
		}
		close(first)
	}()
	var chunks []openai.ChatCompletionChunk
	select {
	case c, ok := <-first:
		require.True(t, ok, "stream ended before its first chunk: %v", stream.Err())
		chunks = append(chunks, c)
	case <-time.After(5 * time.Second):
		t.Fatal("first chunk did not arrive while the upstream held the rest: the proxy buffers")
	}
	close(gate)
	for stream.Next() {
		chunks = append(chunks, stream.Current())
	}
	require.NoError(t, stream.Err())

	sent := e.up.sentChunks()
	require.Equal(t, "[DONE]", sent[len(sent)-1])
	require.Len(t, sent, 5, "3 content chunks, the usage chunk Keygate asked for, [DONE]")
	require.Len(t, chunks, 3, "the usage chunk the client did not ask for is kept from it")
	for i, c := range chunks {
		require.Equal(t, sent[i], c.RawJSON(), "chunk %d arrives unchanged", i)
		require.NotEmpty(t, c.Choices)
	}

	var body map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(e.up.requests()[0].Body, &body))
	require.JSONEq(t, `{"include_usage":true}`, string(body["stream_options"]), "stream_options injected")

	e.waitSpent(1)
	es := e.spendOf(e.keyHash)
	require.Len(t, es, 1)
	require.Equal(t, "chatcmpl-s1", es[0].RequestID)
	require.EqualValues(t, streamPrompt, es[0].PromptTokens)
	require.EqualValues(t, streamCompletion, es[0].CompletionTokens)
	require.InDelta(t, cost("gpt-test", streamPrompt, streamCompletion), es[0].Spend, 1e-12)
}

func TestStreamingClientAskedForUsage(t *testing.T) {
	e := newEnv(t, envConfig{})
	p := chatParams("gpt-test")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := e.client.Chat.Completions.NewStreaming(context.Background(), p)
	defer stream.Close()
	var chunks []openai.ChatCompletionChunk
	for stream.Next() {
		chunks = append(chunks, stream.Current())
	}
	require.NoError(t, stream.Err())
	sent := e.up.sentChunks()
	require.Len(t, chunks, 4, "a client that asked for usage gets its chunk")
	for i, c := range chunks {
		require.Equal(t, sent[i], c.RawJSON())
	}
	last := chunks[3]
	require.Empty(t, last.Choices)
	require.EqualValues(t, streamPrompt, last.Usage.PromptTokens)
	require.Equal(t, 1, strings.Count(string(e.up.requests()[0].Body), "stream_options"), "the client's options pass as they were")

	e.waitSpent(1)
	es := e.spendOf(e.keyHash)
	require.Len(t, es, 1)
	require.InDelta(t, cost("gpt-test", streamPrompt, streamCompletion), es[0].Spend, 1e-12)
}

func TestStreamOddFraming(t *testing.T) {
	// CRLF line ends, each byte its own write and flush: events are
	// reassembled, the usage chunk still found and kept back.
	e := newEnv(t, envConfig{})
	e.up.setMode("crlf-bytes")
	resp := e.post(context.Background(), "/v1/chat/completions", e.key,
		`{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	sent := e.up.sentChunks()
	require.Len(t, sent, 5)
	want := ""
	for _, s := range sent {
		if !strings.Contains(s, `"choices":[]`) {
			want += "data: " + s + "\r\n\r\n"
		}
	}
	require.Equal(t, want, string(got))
	e.waitSpent(1)
	es := e.spendOf(e.keyHash)
	require.Len(t, es, 1)
	require.EqualValues(t, streamPrompt, es[0].PromptTokens)
}

func TestEmbeddings(t *testing.T) {
	e := newEnv(t, envConfig{})
	resp, err := e.client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: "embed-test",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")},
	})
	require.NoError(t, err)
	require.JSONEq(t, string(e.up.body()), resp.RawJSON())
	require.Equal(t, []float64{0.125, -0.5, 0.25}, resp.Data[0].Embedding)

	e.waitSpent(1)
	es := e.spendOf(e.keyHash)
	require.Len(t, es, 1)
	require.NotEmpty(t, es[0].RequestID, "no upstream id: a generated one")
	require.EqualValues(t, embedPrompt, es[0].PromptTokens)
	require.InDelta(t, cost("embed-test", embedPrompt, 0), es[0].Spend, 1e-12)
}

func TestModelsListFiltered(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	page, err := e.client.Models.List(ctx)
	require.NoError(t, err)
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
		require.Equal(t, "fake", m.OwnedBy)
	}
	require.Equal(t, []string{"gpt-test", "embed-test"}, ids, "only the models the key may use")

	// A key without model limits sees the upstream's list as it was.
	open, _ := e.createKey(nil)
	page, err = e.sdk(open).Models.List(ctx)
	require.NoError(t, err)
	require.Len(t, page.Data, 3)

	// Asking for a forbidden model by id is refused before the upstream.
	_, err = e.client.Models.Get(ctx, "secret-model")
	requireAPIError(t, err, http.StatusUnauthorized, "key_model_access_denied")
	require.Zero(t, e.up.countPath("/v1/models/secret-model"))
	require.Empty(t, e.spendOf(e.keyHash), "listing models costs nothing")
}

func TestDisallowedModelNeverReachesUpstream(t *testing.T) {
	e := newEnv(t, envConfig{})
	_, err := e.client.Chat.Completions.New(context.Background(), chatParams("secret-model"))
	requireAPIError(t, err, http.StatusUnauthorized, "key_model_access_denied")

	// A second "Model" key must not smuggle a forbidden model past the
	// check (Go's struct decoding would read it case-insensitively).
	resp := e.post(context.Background(), "/v1/chat/completions", e.key, `{"model":"secret-model","Model":"gpt-test","messages":[]}`, nil)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp = e.post(context.Background(), "/chat/completions", e.key, `{"model":"gpt-test","model":"secret-model"}`, nil)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the last duplicate wins, as upstream")

	require.Empty(t, e.up.requests(), "the upstream never saw a forbidden request")
}

func TestBudgetExceededBlocksNextCall(t *testing.T) {
	budget := cost("gpt-test", chatPrompt, chatCompletion) / 2
	e := newEnv(t, envConfig{key: func(k *store.Key) { k.MaxBudget = &budget }})
	ctx := context.Background()
	_, err := e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
	require.NoError(t, err)
	e.waitSpent(1)

	// LiteLLM answers 400 budget_exceeded: a 429 would make the OpenAI
	// SDKs retry twice before failing.
	_, err = e.client.Chat.Completions.New(ctx, chatParams("gpt-test"))
	requireAPIError(t, err, http.StatusBadRequest, "budget_exceeded")
	require.Len(t, e.up.requests(), 1, "the blocked call never reached the upstream")
	require.Len(t, e.spendOf(e.keyHash), 1)
}

func TestIdentityHeadersCannotBeSpoofed(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.sdk(e.key,
		option.WithHeader("X-Keygate-User-Id", "u-admin"),
		option.WithHeader("X-Keygate-User-Role", "proxy_admin"),
		option.WithHeader("x-keygate-team-id", "t-other"),
		option.WithHeader("X-Keygate-Model", "gpt-test"),
		option.WithHeader("x-api-key", e.key),
		option.WithHeader("x-litellm-api-key", e.key),
		option.WithHeader("Cookie", "keygate_session="+e.key+"; keygate_refresh=sid.mac; theme=dark; keygate_csrf=tok"),
	)
	_, err := c.Chat.Completions.New(context.Background(), chatParams("gpt-test"))
	require.NoError(t, err)
	got := e.up.requests()[0]
	require.Equal(t, []string{e.userID}, got.Header.Values("X-Keygate-User-Id"))
	require.Equal(t, []string{"internal_user"}, got.Header.Values("X-Keygate-User-Role"))
	require.Equal(t, []string{e.teamID}, got.Header.Values("X-Keygate-Team-Id"))
	require.Empty(t, got.Header.Values("X-Keygate-Model"))
	require.Empty(t, got.Header.Values("X-Api-Key"))
	require.Empty(t, got.Header.Values("X-Litellm-Api-Key"))
	require.Equal(t, "theme=dark", got.Header.Get("Cookie"), "Keygate's cookies (session, refresh, CSRF) stay behind")
	require.Equal(t, []string{"Bearer " + upstreamKey}, got.Header.Values("Authorization"))
	require.NotContains(t, headerDump(got.Header)+string(got.Body), e.key)
}

func TestNoUpstreamKeySendsNoAuthorization(t *testing.T) {
	e := newEnv(t, envConfig{options: func(o *upstream.Options) { o.UpstreamKey = "" }})
	_, err := e.client.Chat.Completions.New(context.Background(), chatParams("gpt-test"))
	require.NoError(t, err)
	require.Empty(t, e.up.requests()[0].Header.Values("Authorization"))
}

func TestUnauthenticatedNeverForwarded(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	_, err := e.sdk("").Chat.Completions.New(ctx, chatParams("gpt-test"))
	requireAPIError(t, err, http.StatusUnauthorized, "auth_error")
	_, err = e.sdk("sk-kg-0000000000000000000000000000").Chat.Completions.New(ctx, chatParams("gpt-test"))
	requireAPIError(t, err, http.StatusUnauthorized, "auth_error")
	_, err = e.sdk("sk-not-a-known-key").Chat.Completions.New(ctx, chatParams("gpt-test"))
	requireAPIError(t, err, http.StatusUnauthorized, "auth_error")
	require.Empty(t, e.up.requests())
}

func TestPathTraversalRefused(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, p := range []string{"/v1/../key/generate", "/v1/%2e%2e/key/generate", "/v1//chat/completions", "/v1/./models"} {
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+p, strings.NewReader(`{"model":"gpt-test"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+e.key)
		resp, err := (&http.Client{Transport: e.tr}).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
	}
	require.Empty(t, e.up.requests())
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, envConfig{options: func(o *upstream.Options) { o.MaxBodyBytes = 1024 }})
	resp := e.post(context.Background(), "/v1/chat/completions", e.key,
		`{"model":"gpt-test","messages":[{"role":"user","content":"`+strings.Repeat("x", 2048)+`"}]}`, nil)
	defer resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	requireErrorBody(t, resp, "bad_request_error")
	require.Empty(t, e.up.requests())
}

func TestUnpricedModelCostsZeroAndWarnsOnce(t *testing.T) {
	e := newEnv(t, envConfig{key: func(k *store.Key) { k.Models = nil }})
	for range 2 {
		_, err := e.client.Chat.Completions.New(context.Background(), chatParams("unpriced-model"))
		require.NoError(t, err)
	}
	e.waitSpent(2)
	es := e.spendOf(e.keyHash)
	require.Len(t, es, 2)
	for _, s := range es {
		require.Zero(t, s.Spend)
		require.EqualValues(t, chatPrompt, s.PromptTokens)
	}
	require.Equal(t, 1, strings.Count(e.logs.String(), "no price for model"))
}

// requireAPIError checks an SDK error's status and LiteLLM error type.
func requireAPIError(t *testing.T, err error, status int, typ string) *openai.Error {
	t.Helper()
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr), "want an API error, got %v", err)
	require.Equal(t, status, apiErr.StatusCode, apiErr.RawJSON())
	require.Equal(t, typ, apiErr.Type, apiErr.RawJSON())
	require.Equal(t, strings.TrimSpace(apiErr.Code), strconv.Itoa(status), "code is the status as a string")
	require.NotEmpty(t, apiErr.Message)
	require.Equal(t, "application/json", apiErr.Response.Header.Get("Content-Type"))
	return apiErr
}

// requireErrorBody checks a raw response is LiteLLM's error shape.
func requireErrorBody(t *testing.T, resp *http.Response, typ string) {
	t.Helper()
	var body struct {
		Error struct {
			Message, Type, Param, Code string
		} `json:"error"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, typ, body.Error.Type)
	require.Equal(t, strconv.Itoa(resp.StatusCode), body.Error.Code)
	require.Equal(t, "None", body.Error.Param)
	require.NotEmpty(t, body.Error.Message)
}

// TestLookAlikeIdentityHeadersStripped (issue 12, defect 7): headers that
// many servers fold into Keygate's identity headers (case, '_' for '-')
// never reach the upstream; only Keygate's own values do.
func TestLookAlikeIdentityHeadersStripped(t *testing.T) {
	e := newEnv(t, envConfig{})
	hdr := map[string]string{}
	for _, name := range []string{"X_keygate_user_role", "X_KEYGATE_USER_ID", "x_Keygate-Team_Id", "X-KEYGATE_KEY_ALIAS", "x_keygate_anything"} {
		hdr[name] = "forged"
	}
	resp := e.post(context.Background(), "/v1/chat/completions", e.key, `{"model":"gpt-test","messages":[]}`, hdr)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got := e.up.requests()[0]
	for name, vs := range got.Header {
		norm := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if strings.HasPrefix(norm, "x-keygate-") {
			require.NotContains(t, vs, "forged", "%s reached the upstream", name)
		}
	}
	require.Equal(t, []string{"internal_user"}, got.Header.Values("X-Keygate-User-Role"))
}

// TestForwardingDecidesLikeVerify: forwarding reads models the way
// /auth/verify does (every duplicate, forms, query), through the same
// decision.
func TestForwardingDecidesLikeVerify(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	for _, c := range []struct {
		path, body, ct string
		status         int // LiteLLM's: 401 for a model a list refuses; Keygate's 403 where none is established
	}{
		{"/v1/chat/completions", `{"model":"secret-model","model":"gpt-test"}`, "application/json", http.StatusUnauthorized},
		{"/v1/chat/completions?model=secret-model", `{"model":"gpt-test"}`, "application/json", http.StatusUnauthorized},
		{"/v1/chat/completions", `model=secret-model`, "application/x-www-form-urlencoded", http.StatusUnauthorized},
		{"/v1/chat/completions", `{"messages":[]}`, "application/json", http.StatusForbidden},
		{"/openai/deployments/secret-model/chat/completions", `{"model":"gpt-test"}`, "application/json", http.StatusUnauthorized},
	} {
		path := c.path
		if !strings.HasPrefix(path, "/v1/") {
			continue // not under the forwarded prefixes of this env
		}
		resp := e.post(ctx, path, e.key, c.body, map[string]string{"Content-Type": c.ct})
		resp.Body.Close()
		require.Equal(t, c.status, resp.StatusCode, "%s %s", c.path, c.body)
	}
	require.Empty(t, e.up.requests(), "a refused request reached the upstream")
}

// TestLiteLLMStatuses: forwarding mode answers refusals as LiteLLM's proxy
// does (auth_exception_handler.py, auth_checks.py, user_api_key_auth.py),
// so LiteLLM clients and the OpenAI SDKs behave as before: an expired key
// is 400 expired_key, a model outside the team's or the owner's list is
// 401 team_/user_model_access_denied, a route outside allowed_routes is
// 401 auth_error.
func TestLiteLLMStatuses(t *testing.T) {
	past := time.Now().Add(-time.Hour)
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	expired, _ := e.createKey(func(k *store.Key) { k.ExpiresAt = &past })
	_, err := e.sdk(expired).Chat.Completions.New(ctx, chatParams("gpt-test"))
	requireAPIError(t, err, http.StatusBadRequest, "expired_key")

	_, err = e.st.UpdateTeam(ctx, e.teamID, func(tm *store.Team) error { tm.Models = []string{"embed-test"}; return nil })
	require.NoError(t, err)
	teamKey, _ := e.createKey(func(k *store.Key) { k.TeamID = e.teamID })
	_, err = e.sdk(teamKey).Chat.Completions.New(ctx, chatParams("gpt-test"))
	requireAPIError(t, err, http.StatusUnauthorized, "team_model_access_denied")

	_, err = e.st.UpdateUser(ctx, e.userID, func(u *store.User) error { u.Models = []string{"no-default-models"}; return nil })
	require.NoError(t, err)
	personal, _ := e.createKey(nil)
	_, err = e.sdk(personal).Chat.Completions.New(ctx, chatParams("gpt-test"))
	requireAPIError(t, err, http.StatusUnauthorized, "key_model_access_denied")

	routed, _ := e.createKey(func(k *store.Key) { k.AllowedRoutes = []string{"/v1/embeddings"} })
	_, err = e.sdk(routed).Chat.Completions.New(ctx, chatParams("gpt-test"))
	requireAPIError(t, err, http.StatusUnauthorized, "auth_error")
	require.Empty(t, e.up.requests(), "no refused request reached the upstream")
}
