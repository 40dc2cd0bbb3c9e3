package scim

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

	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
)

// scimType is the scimType of a 400 (or 409) error, RFC 7644 section
// 3.12. It travels as the internal cause of an *apperr.Error, so statuses
// and messages are still decided in one place (internal/httperr).
type scimType string

// The scimType values Keygate answers with.
const (
	typeInvalidFilter scimType = "invalidFilter"
	typeInvalidSyntax scimType = "invalidSyntax"
	typeInvalidPath   scimType = "invalidPath"
	typeNoTarget      scimType = "noTarget"
	typeInvalidValue  scimType = "invalidValue"
	typeMutability    scimType = "mutability"
	typeUniqueness    scimType = "uniqueness"
)

func (t scimType) Error() string { return "scim: " + string(t) }

// bad is a 400 with a scimType.
func bad(t scimType, format string, a ...any) error {
	return apperr.Invalid(format, a...).Wrap(t)
}

// writeError is the httperr.Shape of everything under /scim/v2: SCIM's
// error body, status as a string, scimType where one applies.
func writeError(c *gin.Context, status int, message string, err error) {
	body := map[string]any{"schemas": []string{msgError}, "status": strconv.Itoa(status), "detail": message}
	var t scimType
	switch {
	case errors.As(err, &t):
		body["scimType"] = string(t)
	case errors.Is(err, service.ErrDirectoryImmutable):
		body["scimType"] = string(typeMutability)
	case status == http.StatusConflict:
		body["scimType"] = string(typeUniqueness)
	case status == http.StatusBadRequest:
		body["scimType"] = string(typeInvalidValue)
	}
	if status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="keygate-scim"`)
	}
	b, _ := json.Marshal(body) // a map of strings cannot fail
	c.Data(status, contentType, b)
}

// readObject reads a JSON object body. SCIM's media type and plain JSON
// are accepted; attribute names are matched case-insensitively later, so
// the object is kept generic. Malformed JSON, trailing data, a non-object
// and other media types are invalidSyntax; an oversized body is 413.
func readObject(c *gin.Context) (map[string]any, error) {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/scim+json" && mt != "application/json") {
			return nil, bad(typeInvalidSyntax, "Content-Type must be application/scim+json or application/json.")
		}
	}
	if c.Request.Body == nil {
		return nil, bad(typeInvalidSyntax, "A JSON request body is required.")
	}
	body, err := io.ReadAll(c.Request.Body)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err == nil {
		err = dec.Decode(&v)
	}
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = terr
			if err == nil {
				err = errors.New("trailing data")
			}
		}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e := apperr.Invalid("The request body is larger than %d bytes.", mbe.Limit)
			e.Kind = apperr.KindTooLarge
			return nil, e
		}
		if errors.Is(err, io.EOF) {
			return nil, bad(typeInvalidSyntax, "A JSON request body is required.")
		}
		return nil, bad(typeInvalidSyntax, "The request body is not one well-formed JSON object.")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, bad(typeInvalidSyntax, "The request body must be a JSON object.")
	}
	// Every string, stored or not, is checked as the rest of the API checks
	// JSON: a NUL written as \u0000 is refused by PostgreSQL mid-query.
	var textErr *apperr.Error
	if err := api.CheckJSONText(body); errors.As(err, &textErr) {
		return nil, textErr.Wrap(typeInvalidValue)
	} else if err != nil {
		return nil, err
	}
	return obj, nil
}

// attrs is a JSON object whose keys are matched case-insensitively, as
// SCIM attribute names are (RFC 7643 section 2.1).
type attrs map[string]any

func fold(m map[string]any) attrs {
	out := make(attrs, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

func (a attrs) get(name string) (any, bool) {
	v, ok := a[strings.ToLower(name)]
	return v, ok
}

// str reads a string attribute: absent or null is "", another type is
// invalidValue.
func (a attrs) str(name string) (string, error) {
	v, ok := a.get(name)
	if !ok || v == nil {
		return "", nil
	}
	return asString(name, v)
}

func asString(name string, v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	}
	return "", bad(typeInvalidValue, "%s must be a string.", name)
}

// asBool accepts JSON booleans and, because Microsoft Entra ID sends them
// so, the strings "True" and "False" in any case.
func asBool(name string, v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, bad(typeInvalidValue, "%s must be a boolean.", name)
}

func asObject(name string, v any) (attrs, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, bad(typeInvalidValue, "%s must be an object.", name)
	}
	return fold(m), nil
}

// asObjects accepts a list of objects or, leniently, one object.
func asObjects(name string, v any) ([]attrs, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return []attrs{fold(x)}, nil
	case []any:
		out := make([]attrs, 0, len(x))
		for _, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, bad(typeInvalidValue, "%s must be a list of objects.", name)
			}
			out = append(out, fold(m))
		}
		return out, nil
	}
	return nil, bad(typeInvalidValue, "%s must be a list of objects.", name)
}

// checkSchemas requires the resource's core schema URN in "schemas" and
// refuses the other resource type's (a Group posted to /Users). Extension
// URNs Keygate does not know are tolerated: IdPs list custom ones.
func checkSchemas(body attrs, want, other string) error {
	v, ok := body.get("schemas")
	if !ok {
		return bad(typeInvalidSyntax, "schemas is required and must list %s.", want)
	}
	list, ok := v.([]any)
	if !ok {
		return bad(typeInvalidSyntax, "schemas must be a list of schema URNs.")
	}
	found := false
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return bad(typeInvalidSyntax, "schemas must be a list of schema URNs.")
		}
		switch {
		case strings.EqualFold(s, want):
			found = true
		case strings.EqualFold(s, other):
			return bad(typeInvalidSyntax, "schemas names %s, which this endpoint does not serve.", other)
		}
	}
	if !found {
		return bad(typeInvalidSyntax, "schemas must list %s.", want)
	}
	return nil
}
