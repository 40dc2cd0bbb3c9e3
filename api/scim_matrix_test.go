package api_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireRouteError is requireError for any route: under /scim/v2 errors
// use SCIM's error schema (whose detail is the message), elsewhere
// LiteLLM's.
func requireRouteError(t *testing.T, r response, path string, status int) map[string]any {
	t.Helper()
	if !strings.HasPrefix(path, "/scim/v2/") {
		return requireError(t, r, status)
	}
	require.Equal(t, status, r.Code, r.Body.String())
	m := r.JSON(t)
	require.Equal(t, []any{"urn:ietf:params:scim:api:messages:2.0:Error"}, m["schemas"], r.Body.String())
	require.Equal(t, itoa(status), m["status"])
	return map[string]any{"message": m["detail"]}
}
