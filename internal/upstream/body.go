package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"

	"github.com/keygate/keygate/internal/apperr"
)

// bodyInfo is what the proxy needs from a request body.
type bodyInfo struct {
	model string
	// opaque: the body is neither JSON nor a form we can read, so its
	// model (if any) is unknown.
	opaque bool
	// strip: include_usage was added on the client's behalf.
	strip bool
	// rewritten is the body to forward when it had to change.
	rewritten []byte
	// maxTokens is the output bound the request sets (max_tokens,
	// max_completion_tokens or max_output_tokens), 0 when none.
	maxTokens int64
	// choices is how many answers the request asks for (n, best_of):
	// each may use maxTokens.
	choices int64
	// mediaParts counts media content parts (mediaType), whose cost is not
	// in their bytes (a short image URL costs as many tokens as a page).
	mediaParts int64
}

// mediaPartTokens is what one media part counts for in a
// call's estimate: above what one image costs at OpenAI's and Anthropic's
// largest sizes (about 1 100 and 1 600 tokens); a long recording or PDF
// can still cost more.
const mediaPartTokens = 2000

// mediaType reports whether a content part's "type" carries media: any
// type naming an image, audio, video, file or document (image_url,
// input_image, input_audio, video_url, input_file, document, ...), so a
// provider's new part type is counted rather than missed (an outside
// test found video_url parts uncounted).
func mediaType(t string) bool {
	t = strings.ToLower(t)
	for _, w := range []string{"image", "audio", "video", "file", "document"} {
		if strings.Contains(t, w) {
			return true
		}
	}
	return false
}

// geminiMedia reports whether x is a Gemini-format part carrying media:
// those have no "type", only an inline_data or file_data member.
func geminiMedia(x map[string]any) bool {
	for _, k := range []string{"inline_data", "inlineData", "file_data", "fileData"} {
		if _, ok := x[k]; ok {
			return true
		}
	}
	return false
}

// countMediaParts counts the objects anywhere in body whose "type" is a
// media part's. A string that merely mentions such a type is not
// counted; one counted wrongly only makes the estimate larger.
func countMediaParts(body []byte) int64 {
	// The shortcut may skip only bodies that cannot name a type: a key can
	// be escaped ("t\u0079pe" is "type" to every JSON reader; an outside
	// test hid its image parts that way).
	if !bytes.Contains(body, []byte(`"type"`)) && !bytes.Contains(body, []byte(`\u`)) && !bytes.Contains(body, []byte(`_data"`)) &&
		!bytes.Contains(body, []byte(`Data"`)) {
		return 0
	}
	var doc any
	if json.Unmarshal(body, &doc) != nil {
		return 0
	}
	var n int64
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if t, ok := x["type"].(string); ok && mediaType(t) {
				n++
			} else if geminiMedia(x) {
				n++
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	return n
}

// maxChoices bounds n/best_of as OpenAI does.
const maxChoices = 128

// includeUsage is spliced into a streaming completion request that did not
// ask for usage.
const includeUsage = `"stream_options":{"include_usage":true}`

// inspectBody finds the model and, for streaming completions without
// usage, asks the upstream for it.
//
// The body is decoded into a map rather than a struct on purpose: Go's
// struct decoding matches keys case-insensitively, so {"model":"a",
// "Model":"b"} would read "b" here while the upstream (exact keys, last
// duplicate wins, as a map does) reads "a" — a way around the model check.
func inspectBody(body []byte, contentType, path string) (bodyInfo, error) {
	mt, params, _ := mime.ParseMediaType(contentType)
	if mt == "multipart/form-data" {
		model, ok := formModel(body, params["boundary"])
		return bodyInfo{model: model, opaque: !ok}, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		if strings.Contains(mt, "json") {
			return bodyInfo{}, apperr.Invalid("Request body is not a valid JSON object.").Wrap(err)
		}
		// Some upstreams parse any body as JSON whatever its type, so a
		// body that is not JSON to us is treated as of unknown model.
		return bodyInfo{opaque: true}, nil
	}
	var info bodyInfo
	if raw, ok := doc["model"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &info.model); err != nil {
			return bodyInfo{}, apperr.InvalidParam("model", "model must be a string.")
		}
	}
	for _, f := range []string{"max_tokens", "max_completion_tokens", "max_output_tokens"} {
		var n float64
		if raw, ok := doc[f]; ok && json.Unmarshal(raw, &n) == nil && n > 0 && n < 1e9 {
			info.maxTokens = max(info.maxTokens, int64(n))
		}
	}
	info.mediaParts = countMediaParts(body)
	info.choices = 1
	for _, f := range []string{"n", "best_of"} {
		raw, ok := doc[f]
		if !ok || string(raw) == "null" {
			continue
		}
		var n float64
		if json.Unmarshal(raw, &n) != nil || n != float64(int64(n)) || n < 1 || n > maxChoices {
			// Each answer costs its own tokens: a count that cannot be
			// read could not be reserved for.
			return bodyInfo{}, apperr.InvalidParam(f, "%s must be a whole number from 1 to %d.", f, maxChoices)
		}
		info.choices = max(info.choices, int64(n))
	}
	raw, ok := doc["stream"]
	if !ok || string(raw) == "null" {
		return info, nil
	}
	var stream bool
	if json.Unmarshal(raw, &stream) != nil {
		// An upstream may stream on "true" or 1 without being asked for
		// usage; LiteLLM's clients send booleans.
		return bodyInfo{}, apperr.InvalidParam("stream", "stream must be true or false.")
	}
	if !stream || !isCompletions(path) {
		return info, nil
	}
	rewritten, added, err := addIncludeUsage(body, doc)
	if err != nil {
		return bodyInfo{}, err
	}
	info.strip, info.rewritten = added, rewritten
	return info, nil
}

// addIncludeUsage returns body with stream_options.include_usage set, and
// whether it had to add it.
func addIncludeUsage(body []byte, doc map[string]json.RawMessage) ([]byte, bool, error) {
	raw, ok := doc["stream_options"]
	if !ok || string(raw) == "null" {
		// Splice rather than re-encode, so the client's body reaches the
		// upstream byte for byte apart from the addition.
		t := bytes.TrimRight(body, " \t\r\n")
		if len(t) == 0 || t[len(t)-1] != '}' {
			return body, false, nil
		}
		out := make([]byte, 0, len(t)+len(includeUsage)+1)
		out = append(out, t[:len(t)-1]...)
		out = append(out, ',')
		out = append(out, includeUsage...)
		out = append(out, '}')
		return out, true, nil
	}
	var so map[string]json.RawMessage
	if err := json.Unmarshal(raw, &so); err != nil {
		return nil, false, apperr.InvalidParam("stream_options", "stream_options must be an object.")
	}
	var want bool
	if v, ok := so["include_usage"]; ok && json.Unmarshal(v, &want) == nil && want {
		return body, false, nil
	}
	so["include_usage"] = json.RawMessage("true")
	b, err := marshalRaw(so)
	if err != nil {
		return nil, false, err
	}
	doc["stream_options"] = b
	out, err := marshalRaw(doc)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// marshalRaw encodes v without HTML escaping, so prompt text passes
// unchanged.
func marshalRaw(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// maxFormModel bounds the model field read from a multipart form.
const maxFormModel = 1 << 10

// formModel returns the "model" field of a multipart form, the last one
// when repeated (as Starlette, under LiteLLM, reads it), and false when the
// form cannot be read to its end.
func formModel(body []byte, boundary string) (string, bool) {
	if boundary == "" {
		return "", false
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	model := ""
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return model, true
		}
		if err != nil {
			return "", false
		}
		if part.FormName() == "model" {
			b, err := io.ReadAll(io.LimitReader(part, maxFormModel))
			if err != nil {
				return "", false
			}
			model = string(b)
		}
	}
}

func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
