package ui

import (
	"io"
	"net/http"

	"github.com/gin-gonic/gin"
)

// confirmStep is a row action that asks first (delete, revoke, rotate):
// the row shows a small form whose button opens a modal <dialog> (app.js),
// which the browser draws in its top layer, above every card and table,
// so nothing can clip it. Without script the same button posts without
// confirm=yes and the handler answers with the confirmation page
// (confirmed), so the step is never skipped.
type confirmStep struct {
	ID     string // unique on the page; the dialog's id
	Action string
	CSRF   string
	Fields []hiddenField
	Button string // the row's button
	Danger bool
	Title  string // the dialog's heading
	// The question, with the thing acted on in bold.
	Before, Subject, After string
	Yes                    string
}

type hiddenField struct{ Name, Value string }

type confirmPage struct {
	page
	Step   confirmStep
	Cancel string
}

func (t *templates) confirm(w io.Writer, d confirmPage) error { return t.exec(w, pageConfirm, d) }

// confirmed reports whether a row action's post carries the dialog's
// confirmation. When it does not, it has answered with the confirmation
// page, which posts the same fields again with confirm=yes, and the
// handler must stop.
func (u *UI) confirmed(c *gin.Context, step confirmStep, cancel string) (bool, error) {
	if c.PostForm("confirm") == "yes" {
		return true, nil
	}
	step.CSRF = u.opts.Web.CSRFToken(principalOf(c).SessionID)
	d := confirmPage{page: u.pageFor(c, step.Title, ""), Step: step, Cancel: safeNext(cancel)}
	return false, u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.confirm(w, d) })
}

// fields lists name/value pairs as hidden form fields.
func fields(kv ...string) []hiddenField {
	out := make([]hiddenField, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, hiddenField{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// domID makes an element id from a record id (a hash, a UUID or a
// user-chosen id): only letters, digits and dashes, at most 40 of them.
func domID(prefix, id string) string {
	b := []byte(prefix)
	n := 0
	for i := 0; i < len(id) && n < 40; i++ {
		ch := id[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' {
			b = append(b, ch)
		} else {
			b = append(b, '_')
		}
		n++
	}
	return string(b)
}
