package ui

import (
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/internal/httperr"
)

// ErrorPages makes the router's own answers under /ui/ (no such page, a
// method the page does not take, a body too large) the HTML error page a
// browser gets from every other page. A client that asks for JSON
// (Accept: application/json, not text/html) keeps LiteLLM's JSON error.
// Install it on the engine, before the routes' own middleware.
func (u *UI) ErrorPages() gin.HandlerFunc {
	headers := u.securityHeaders()
	return func(c *gin.Context) {
		if p := c.Request.URL.Path; (p == "/ui" || strings.HasPrefix(p, "/ui/")) && !wantsJSON(c.Request) {
			httperr.UseShape(c, func(c *gin.Context, status int, msg string, _ error) {
				headers(c)
				u.htmlError(c, status, msg)
			})
		}
		c.Next()
	}
}

// wantsJSON reports whether the client asked for JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	html, json := false, false
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/html", "application/xhtml+xml":
			html = true
		case "application/json":
			json = true
		}
	}
	return json && !html
}

// htmlError renders the error page for a status the router chose. The
// browser's session, if any, keeps the navigation on the page.
func (u *UI) htmlError(c *gin.Context, status int, msg string) {
	switch status {
	case http.StatusNotFound:
		msg = "There is no page at this address. Check the link, or start again from the menu."
	case http.StatusMethodNotAllowed:
		msg = "This page cannot be used that way."
	}
	pg := page{Title: "Something went wrong", CSRF: u.formToken(c)}
	if p, err := u.sessionOf(c); err == nil && p.SessionID != "" {
		pg = u.signedIn(p, "Something went wrong", "")
	}
	d := messagePage{page: pg, Status: status, Heading: statusHeading(status), Message: msg}
	if err := u.write(c, status, func(w io.Writer) error { return u.tmpl.errorPage(w, d) }); err != nil {
		httperr.Logger(c).Error("ui: render error page", "err", err)
		c.String(http.StatusInternalServerError, "Internal server error.")
	}
}
