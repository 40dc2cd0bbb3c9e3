package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
)

func forbiddenRoute(p auth.Principal, rt Route) error {
	role := string(p.Role)
	if role == "" {
		role = "none"
	}
	return apperr.Forbidden("Your role (%s) may not call %s %s (requires %s).", role, rt.Method, rt.Path, rt.Perm)
}

// decodeJSON reads the request body into v. Unknown fields are ignored
// (LiteLLM clients send many); a known field with the wrong type, malformed
// JSON, an empty body, trailing data or an oversized body is a 4xx naming
// the problem. The body must be declared JSON (or not declared at all, as
// FastAPI and so LiteLLM accept): a cross-site form can only send
// text/plain, form or multipart bodies. Text in it is checked at this
// edge (validText) before any of it reaches the database.
func decodeJSON(c *gin.Context, v any) error {
	if err := requireJSON(c.GetHeader("Content-Type")); err != nil {
		return err
	}
	if c.Request.Body == nil {
		return apperr.Invalid("A JSON request body is required.")
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(mbe)
		}
		return apperr.Invalid("Could not read the request body.").Wrap(err)
	}
	if err := CheckJSONText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apperr.Invalid("The request body must hold exactly one JSON object.")
	}
	return nil
}

// requireJSON accepts application/json, application/*+json or no
// declared type.
func requireJSON(ct string) error {
	if strings.TrimSpace(ct) == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return nil
	}
	e := apperr.Invalid("The request body must be JSON: send Content-Type: application/json.")
	e.Kind = apperr.KindUnsupported
	return e
}

func tooLarge(mbe *http.MaxBytesError) error {
	e := apperr.Invalid("The request body is larger than %d bytes.", mbe.Limit)
	e.Kind = apperr.KindTooLarge
	return e
}

func jsonError(err error) error {
	var mbe *http.MaxBytesError
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	if ae, ok := apperr.As(err); ok { // a field's own decoder said what is wrong
		return ae
	}
	switch {
	case errors.As(err, &mbe):
		return tooLarge(mbe)
	case errors.Is(err, io.EOF):
		return apperr.Invalid("A JSON request body is required.")
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return apperr.Invalid("The request body must be a JSON object.")
		}
		return apperr.InvalidParam(field, "Field %q must be of type %s, got %s.", field, jsonTypeName(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return apperr.Invalid("Malformed JSON at offset %d.", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.Invalid("Malformed JSON: the body ends early.")
	}
	// Custom UnmarshalJSON errors (teams, member) land here; their text
	// is ours and safe to show.
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return apperr.Invalid("Invalid request body: %s", msg)
}

func jsonTypeName(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "integer"
	case strings.HasPrefix(kind, "float"):
		return "number"
	case kind == "slice", kind == "array":
		return "list"
	case kind == "map", kind == "struct", kind == "ptr":
		return "object"
	}
	return kind
}

// queryInt reads an optional integer query parameter.
func queryInt(c *gin.Context, name string) (int, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, apperr.InvalidParam(name, "Query parameter %s must be an integer.", name)
	}
	return n, nil
}

// pageParams reads the optional 1-based page and the page size (whose
// query name differs between LiteLLM routes: page_size or size).
func pageParams(c *gin.Context, sizeName string) (page, size int, err error) {
	if page, err = queryInt(c, "page"); err != nil {
		return 0, 0, err
	}
	if size, err = queryInt(c, sizeName); err != nil {
		return 0, 0, err
	}
	// Absent means the default; a value given must be a real one (0 used
	// to read as absent, so page_size=0 quietly meant 25).
	if c.Query("page") != "" && page < 1 {
		return 0, 0, apperr.InvalidParam("page", "page must be 1 or more.")
	}
	if c.Query(sizeName) != "" && size < 1 {
		return 0, 0, apperr.InvalidParam(sizeName, "%s must be 1 or more.", sizeName)
	}
	return page, size, nil
}

// queryList reads a comma-separated query parameter.
func queryList(c *gin.Context, name string) []string {
	v := c.Query(name)
	if v == "" {
		return nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func requireQuery(c *gin.Context, name string) (string, error) {
	v := c.Query(name)
	if v == "" {
		return "", apperr.InvalidParam(name, "Query parameter %s is required.", name)
	}
	return v, nil
}

func totalPages(total int64, size int) int64 {
	if size <= 0 {
		return 0
	}
	return (total + int64(size) - 1) / int64(size)
}
