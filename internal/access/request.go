package access

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strings"
)

// ModelsInBody returns every model a request body names, read as an
// upstream reads it, and whether that reading is complete (known false:
// the body may name a model that could not be read, so a credential
// limited to some models must be refused).
//
//   - JSON (recognised by its first byte, whatever the Content-Type says:
//     upstreams such as LiteLLM parse any body as JSON): every top-level
//     "model" string. Duplicate keys all count, since upstreams differ on
//     which one wins (Python and Go take the last); every one must be
//     allowed. Key names are compared after unescaping, as parsers do.
//   - a Content-Type containing "form" (LiteLLM reads such bodies as forms,
//     whatever their first byte): multipart/form-data parts named
//     "model"; anything else as URL-encoded "model" fields. A part whose
//     Content-Disposition does not parse unambiguously (a parameter named
//     twice, two disposition headers) leaves the model unknown, since
//     servers differ on which name they take.
//   - An empty body names nothing. Anything else is unknown.
//
// Every reading an upstream may make counts, together: each Content-Type
// header (a request may carry several, and servers differ on which one
// wins), matched without regard to case, and the JSON reading of a body
// that starts like JSON even when a header says form (LiteLLM matches
// "form" case-sensitively in the last header, so an outside test had
// Keygate read a form while LiteLLM read JSON naming another model).
func ModelsInBody(contentTypes []string, body []byte) (models []string, known bool) {
	// A UTF-8 byte-order mark does not stop a body being JSON to some
	// parsers (Python's json.loads of bytes skips it): it looks like JSON.
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(body), []byte("\xEF\xBB\xBF")))
	if len(trimmed) == 0 {
		return nil, true
	}
	read := false
	for _, ct := range contentTypes {
		mt, params, _ := mime.ParseMediaType(ct)
		switch {
		case mt == "multipart/form-data":
			ms, ok := multipartModels(body, params["boundary"])
			if !ok {
				return nil, false
			}
			models, read = append(models, ms...), true
		case strings.Contains(strings.ToLower(ct), "form"):
			q, err := url.ParseQuery(string(body))
			if err != nil {
				return nil, false
			}
			models, read = append(models, nonEmpty(q["model"])...), true
		}
	}
	if trimmed[0] != '{' {
		if !read {
			return nil, false
		}
		return models, true
	}
	ms, ok := jsonModels(trimmed)
	if !ok {
		return nil, false
	}
	return append(models, ms...), true
}

func jsonModels(body []byte) ([]string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var models []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		if key != "model" || string(raw) == "null" {
			continue
		}
		var m string
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, false // a model that is not a string
		}
		models = append(models, m)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false // trailing data: the upstream's parser refuses or reads it differently
	}
	return models, true
}

func multipartModels(body []byte, boundary string) ([]string, bool) {
	if boundary == "" {
		return nil, false
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var models []string
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return models, true
		}
		if err != nil {
			return nil, false
		}
		cd := part.Header.Values("Content-Disposition")
		if len(cd) != 1 {
			return nil, false
		}
		_, ps, err := mime.ParseMediaType(cd[0])
		if err != nil || (ps["name"] == "" && ps["filename"] == "") {
			return nil, false
		}
		// The name counts whatever the disposition type: Starlette (and so
		// LiteLLM) keeps the field of an "attachment" or "inline" part,
		// which Go's FormName skips.
		if ps["name"] == "model" {
			v, err := io.ReadAll(io.LimitReader(part, 4096))
			if err != nil {
				return nil, false
			}
			if s := strings.TrimSpace(string(v)); s != "" {
				models = append(models, s)
			}
		}
		_ = part.Close()
	}
}

func nonEmpty(vs []string) []string {
	var out []string
	for _, v := range vs {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// ModelsInURL returns the models a request's route and query name:
// ?model= (realtime, some clients), /openai/deployments/{m}/... and
// /engines/{m}/... (Azure style; the model may contain slashes, as in
// LiteLLM's "vertex_ai/gemini-1.5-flash"), /v1beta/models/{m}:generateContent
// and friends (Gemini), /v1/models/{m} (model info) and
// /bedrock/model/{m}/... (Bedrock pass-through).
func ModelsInURL(route string, query url.Values) []string {
	models := ModelsInQuery(query)
	if m := modelInPath(route); m != "" {
		models = append(models, m)
	}
	return models
}

// ModelsInQuery returns the models a query names: ?model=, and
// ?deployment=, where an Azure-style realtime endpoint takes its model.
func ModelsInQuery(query url.Values) []string {
	return append(nonEmpty(query["model"]), nonEmpty(query["deployment"])...)
}

// URLModels splits ModelsInURL: the model the route's path names, and
// whether the query's ?model= is where the upstream takes the model from
// (realtime). Elsewhere a ?model= still names a model that must be
// allowed, but the upstream reads another place, so it establishes
// nothing (an outside test ran a Vertex AI endpoint and an assistant's
// run with a key limited to another model by adding ?model=<allowed>).
func URLModels(route string) (inPath string, queryCounts bool) {
	r := strings.TrimSuffix(route, "/")
	return modelInPath(route), strings.HasSuffix(r, "/realtime") || r == "/realtime"
}

func modelInPath(route string) string {
	for _, seg := range []string{"/deployments/", "/engines/"} {
		if i := strings.Index(route, seg); i >= 0 {
			rest := route[i+len(seg):]
			for _, end := range []string{"/chat/completions", "/completions", "/embeddings", "/images/", "/audio/"} {
				if j := strings.Index(rest, end); j > 0 {
					return rest[:j]
				}
			}
			m, _, _ := strings.Cut(rest, "/")
			return m
		}
	}
	if i := strings.Index(route, "/models/"); i >= 0 {
		rest := route[i+len("/models/"):]
		if m, _, ok := strings.Cut(rest, ":"); ok {
			return m
		}
		if strings.HasPrefix(route, "/v1/models/") || strings.HasPrefix(route, "/models/") {
			return rest
		}
	}
	if i := strings.Index(route, "/bedrock/model/"); i >= 0 {
		m, _, _ := strings.Cut(route[i+len("/bedrock/model/"):], "/")
		return m
	}
	return ""
}

// SplitRoute separates a request URI ("/v1/chat/completions?model=x") into
// its path and query; percent escapes in the path are kept, so
// RouteAllowed can refuse a route that is not in canonical form. ok is
// false when the query does not parse: an upstream may still read a model
// from it.
func SplitRoute(uri string) (route string, query url.Values, ok bool) {
	p, rawQuery, _ := strings.Cut(uri, "?")
	q, err := url.ParseQuery(rawQuery)
	return p, q, err == nil
}
