package upstream_test

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/upstream"
)

func multipartBody(t *testing.T, fields ...string) (string, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		require.NoError(t, mw.WriteField(fields[i], fields[i+1]))
	}
	fw, err := mw.CreateFormFile("file", "speech.wav")
	require.NoError(t, err)
	_, _ = fw.Write([]byte("RIFF....WAVEfmt "))
	require.NoError(t, mw.Close())
	return buf.String(), mw.FormDataContentType()
}

func TestMultipartModelChecked(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	send := func(body, ct string) int {
		resp := e.post(ctx, "/v1/audio/transcriptions", e.key, body, map[string]string{"Content-Type": ct})
		resp.Body.Close()
		return resp.StatusCode
	}
	body, ct := multipartBody(t, "model", "secret-model")
	require.Equal(t, http.StatusUnauthorized, send(body, ct), "LiteLLM's key_model_access_denied")
	body, ct = multipartBody(t, "model", "gpt-test", "model", "secret-model")
	require.Equal(t, http.StatusUnauthorized, send(body, ct), "the last of repeated fields counts, as upstream")
	require.Empty(t, e.up.requests())

	body, ct = multipartBody(t, "model", "gpt-test")
	require.Equal(t, http.StatusNotFound, send(body, ct), "allowed: forwarded (the fake has no such route)")
	require.Equal(t, 1, e.up.countPath("/v1/audio/transcriptions"))
}

func TestUnreadableBodyRefusedForLimitedKey(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	resp := e.post(ctx, "/v1/chat/completions", e.key, `model=secret-model`, map[string]string{"Content-Type": "text/plain"})
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a body whose model cannot be read does not pass a model limit")
	resp = e.post(ctx, "/v1/chat/completions", e.key, `{"model":`, nil)
	defer resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	requireErrorBody(t, resp, "bad_request_error")
	resp2 := e.post(ctx, "/v1/chat/completions", e.key, `{"model":42}`, nil)
	resp2.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp2.StatusCode)
	require.Empty(t, e.up.requests())

	open, _ := e.createKey(nil)
	resp3 := e.post(ctx, "/v1/chat/completions", open, `model=anything`, map[string]string{"Content-Type": "text/plain"})
	resp3.Body.Close()
	require.Equal(t, http.StatusOK, resp3.StatusCode, "a key without limits is forwarded")
	require.Len(t, e.up.requests(), 1)
}

func TestDatabaseDownIs503(t *testing.T) {
	e := newEnv(t, envConfig{})
	require.NoError(t, e.st.Close())
	_, err := e.client.Chat.Completions.New(context.Background(), chatParams("gpt-test"))
	apiErr := requireAPIError(t, err, http.StatusServiceUnavailable, "service_unavailable")
	require.NotEmpty(t, apiErr.Response.Header.Get("Retry-After"))
	require.Empty(t, e.up.requests(), "never allow when the answer is unknown")
}

func TestModelInPathChecked(t *testing.T) {
	e := newEnv(t, envConfig{options: func(o *upstream.Options) { o.Paths = append(upstream.DefaultPaths(), "/openai/") }})
	ctx := context.Background()
	resp := e.post(ctx, "/openai/deployments/secret-model/chat/completions", e.key, `{"model":"gpt-test","messages":[]}`, nil)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the deployment in the path is a model too")
	resp = e.post(ctx, "/v1/engines/secret-model/completions", e.key, `{"prompt":"hi"}`, nil)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Empty(t, e.up.requests())
}
