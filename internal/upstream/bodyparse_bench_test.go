package upstream

import (
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/access"
)

// BenchmarkReadImageBody: what reading a chat request carrying a 1 MiB
// base64 image costs forwarding (model, limits, media parts; then the
// model check's own reading).
func BenchmarkReadImageBody(b *testing.B) {
	body := []byte(`{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},` +
		`{"type":"image_url","image_url":{"url":"data:image/png;base64,` + strings.Repeat("QUJD", 1<<18) + `"}}]}]}`)
	b.SetBytes(int64(len(body)))
	for _, step := range []struct {
		name string
		fn   func()
	}{
		{"inspectBody", func() { _, _ = inspectBody(body, "application/json", "/v1/chat/completions") }},
		{"countMediaParts", func() { _ = countMediaParts(body) }},
		{"ModelsInBody", func() { _, _ = access.ModelsInBody([]string{"application/json"}, body) }},
	} {
		b.Run(step.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				step.fn()
			}
		})
	}
}
