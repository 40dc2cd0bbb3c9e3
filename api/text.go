package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/httperr"
)

// Text is checked where it enters, for every route: a NUL byte or invalid
// UTF-8 is refused by PostgreSQL mid-query (a 500 before), and an
// overlong filter exhausts SQLite's LIKE; each is the client's mistake,
// so it is a 400 in LiteLLM's error shape before any handler runs.
const (
	// maxQueryValue bounds one query parameter; the longest legitimate
	// ones are OIDC codes and states (the SSO callback allows 4 KiB).
	maxQueryValue = 4096
	// maxFormValue bounds one form field (back-channel logout tokens are
	// up to 16 KiB).
	maxFormValue = 16 << 10
	// maxJSONString bounds one string in a JSON body.
	maxJSONString = 64 << 10
)

func validText(s string, limit int) bool {
	return len(s) <= limit && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// textError is the 400 for bad text in what (e.g. "Query parameter"),
// naming the parameter when its name itself is printable.
func textError(what, param string) error {
	if !validText(param, 64) {
		param = ""
	}
	subject := strings.TrimSpace(what + " " + param)
	return apperr.InvalidParam(param, "%s must be UTF-8 text without NUL characters and not overly long.", subject)
}

// checkText is middleware that refuses bad text in the path, the query
// string and url-encoded form bodies.
func checkText(c *gin.Context) {
	if err := requestText(c.Request); err != nil {
		httperr.Write(c, err)
		return
	}
	c.Next()
}

func requestText(r *http.Request) error {
	if err := URLText(r); err != nil {
		return err
	}
	if r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch {
		return nil
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/x-www-form-urlencoded") {
		return nil
	}
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(mbe)
		}
		return apperr.Invalid("Malformed form body.")
	}
	for k, vs := range r.PostForm {
		if !validText(k, 256) {
			return textError("A form field name", "")
		}
		for _, v := range vs {
			if !validText(v, maxFormValue) {
				return textError("Form field", k)
			}
		}
	}
	return nil
}

// URLText refuses a request whose path or query string holds a NUL byte
// or invalid UTF-8, or is overly long: the part of checkText that also
// applies where the body is not Keygate's to read (/auth/verify, which
// runs in front of Gin, and forwarded requests).
func URLText(r *http.Request) error {
	if !validText(r.URL.Path, 8192) {
		return textError("The request path", "")
	}
	if r.URL.RawQuery != "" { // most requests, /auth/verify above all, have none
		for k, vs := range r.URL.Query() {
			if !validText(k, 256) {
				return textError("A query parameter name", "")
			}
			for _, v := range vs {
				if !validText(v, maxQueryValue) {
					return textError("Query parameter", k)
				}
			}
		}
	}
	return nil
}

// CheckJSONText refuses a JSON body with invalid UTF-8 (which the decoder
// would silently turn into U+FFFD) or with a key or string holding NUL or
// longer than maxJSONString. Syntax errors are left to the decoder, which
// names them better. Handlers that read JSON their own way (SCIM) call it
// too.
func CheckJSONText(body []byte) error {
	if !utf8.Valid(body) {
		return apperr.Invalid("The request body must be UTF-8.")
	}
	if !bytes.Contains(body, []byte(`\u`)) && bytes.IndexByte(body, 0) < 0 && len(body) <= maxJSONString {
		return nil // no escape can hide a NUL and no string can be too long
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) || err != nil {
			return nil
		}
		if s, ok := tok.(string); ok && !validText(s, maxJSONString) {
			return apperr.Invalid("Text in the request body must be UTF-8 without NUL characters and at most %d bytes per value.", maxJSONString)
		}
	}
}
