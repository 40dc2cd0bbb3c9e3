package ui_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLiteLLMInvitationLinkRedirects: LiteLLM's e-mailed invitation link
// <base>/ui?invitation_id=<id> opens Keygate's onboarding for that id.
func TestLiteLLMInvitationLinkRedirects(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for _, path := range []string{"/ui?invitation_id=abc-123", "/ui/?invitation_id=abc-123"} {
		p := b.get(path)
		require.Equal(t, http.StatusSeeOther, p.Status, path)
		require.Equal(t, "/ui/onboarding?id=abc-123", p.Header.Get("Location"), path)
	}
	p := b.get("/ui?invitation_id=a%26next%3Dhttps%3A%2F%2Fevil.example")
	require.Equal(t, "/ui/onboarding?id=a%26next%3Dhttps%3A%2F%2Fevil.example", p.Header.Get("Location"), "the id stays one query value")
	p = b.get("/ui")
	require.Equal(t, "/ui/", p.Header.Get("Location"))
}
