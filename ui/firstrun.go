package ui

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// keyUsage tells the holder of a new key where to send it: the LLM
// proxy's base URL and two snippets to paste. Empty BaseURL: not
// configured, and the page says so.
type keyUsage struct {
	BaseURL string
	Curl    string
	Python  string
}

// usageFor builds the snippets for a new key. base is the OpenAI base URL
// of the proxy (KEYGATE_LLM_BASE_URL, e.g. https://llm.example.com/v1).
func usageFor(base, key string, models []string) keyUsage {
	if base == "" {
		return keyUsage{}
	}
	base = strings.TrimSuffix(base, "/")
	model := "gpt-4o"
	if len(models) > 0 {
		model = models[0]
	}
	m := strconv.Quote(model)
	curl := "curl " + base + "/chat/completions \\\n" +
		"  -H \"Authorization: Bearer " + key + "\" \\\n" +
		"  -H \"Content-Type: application/json\" \\\n" +
		"  -d '{\"model\": " + m + ", \"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}]}'"
	py := "from openai import OpenAI\n\n" +
		"client = OpenAI(\n    base_url=\"" + base + "\",\n    api_key=\"" + key + "\",\n)\n" +
		"reply = client.chat.completions.create(\n    model=" + m + ",\n" +
		"    messages=[{\"role\": \"user\", \"content\": \"Hello\"}],\n)\n" +
		"print(reply.choices[0].message.content)"
	return keyUsage{BaseURL: base, Curl: curl, Python: py}
}

// gettingStarted is the first-run panel on an admin's My keys page.
type gettingStarted struct {
	// LLMBaseURL is where applications are told to send keys; empty
	// means the admin still has to configure it.
	LLMBaseURL string
}

// The dismissal is kept in a cookie rather than on the user record: it
// is a hint, not a setting, so it needs no schema change, no API field
// and no audit event, and seeing it again in another browser costs one
// click. The cookie holds a keyed tag per user who dismissed it on this
// browser (not the user id itself), so another admin signing in here
// still gets the panel.
const (
	gettingStartedCookie = "keygate_getting_started"
	maxDismissTags       = 8
)

func (u *UI) dismissTag(userID string) string {
	tag := u.opts.Web.Sign("getting-started", userID)
	return tag[:min(len(tag), 22)]
}

func dismissTags(c *gin.Context) []string {
	v, err := c.Cookie(gettingStartedCookie)
	if err != nil || v == "" {
		return nil
	}
	return strings.Split(v, ".")
}

func (u *UI) gettingStartedDismissed(c *gin.Context, userID string) bool {
	return slices.Contains(dismissTags(c), u.dismissTag(userID))
}

// dismissGettingStarted hides the panel for the signed-in user on this
// browser (a POST with the session's CSRF token, like every change).
func (u *UI) dismissGettingStarted(c *gin.Context) error {
	tag := u.dismissTag(principalOf(c).UserID)
	tags := dismissTags(c)
	if !slices.Contains(tags, tag) {
		tags = append(tags, tag)
	}
	if len(tags) > maxDismissTags {
		tags = tags[len(tags)-maxDismissTags:]
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: gettingStartedCookie, Value: strings.Join(tags, "."), Path: "/ui/",
		MaxAge: 400 * 24 * 3600, HttpOnly: true, Secure: u.opts.SecureCookies, SameSite: http.SameSiteLaxMode})
	return u.redirect(c, "/ui/", "")
}
