package ui

import (
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"
)

// litellmInvitation sends LiteLLM's invitation e-mail links,
// <base>/ui?invitation_id=<id> (also /ui/?invitation_id=), to Keygate's
// onboarding page, so links sent before a migration keep working
// (invitations imported by `keygate import-litellm` keep their id).
// Anything else goes on to the page asked for.
func (u *UI) litellmInvitation(c *gin.Context) {
	p := c.Request.URL.Path
	if (p == "/ui" || p == "/ui/") && c.Request.Method == http.MethodGet {
		if id := c.Query("invitation_id"); id != "" {
			c.Redirect(http.StatusSeeOther, "/ui/onboarding?id="+url.QueryEscape(id))
			c.Abort()
			return
		}
	}
	c.Next()
}
