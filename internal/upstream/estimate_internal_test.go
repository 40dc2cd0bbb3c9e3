package upstream

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
)

// TestEstimateCountsEveryAnswer: n (and best_of) answers may each use
// max_tokens, so the reservation covers all of them; a count that cannot
// be read is refused rather than reserved as one.
func TestEstimateCountsEveryAnswer(t *testing.T) {
	p := &Proxy{opts: Options{Prices: map[string]Price{"m": {OutputPerMillion: 10}}, EstimateMaxTokens: 1024}}
	one, err := inspectBody([]byte(`{"model":"m","max_tokens":10000}`), "application/json", "/v1/chat/completions")
	require.NoError(t, err)
	ten, err := inspectBody([]byte(`{"model":"m","max_tokens":10000,"n":10}`), "application/json", "/v1/chat/completions")
	require.NoError(t, err)
	require.EqualValues(t, 10, ten.choices)
	require.InDelta(t, 10*p.estimate(&call{model: "m", maxTokens: one.maxTokens, choices: one.choices}),
		p.estimate(&call{model: "m", maxTokens: ten.maxTokens, choices: ten.choices}), 1e-12)

	for _, body := range []string{`{"model":"m","n":"10"}`, `{"model":"m","n":0}`, `{"model":"m","n":1.5}`, `{"model":"m","best_of":1000}`,
		`{"model":"m","stream":"true"}`, `{"model":"m","stream":1}`} {
		_, err := inspectBody([]byte(body), "application/json", "/v1/chat/completions")
		require.Equal(t, apperr.KindInvalid, apperr.KindOf(err), body)
	}
}

// TestEstimateCountsMediaParts: an image, audio or file part costs tokens
// its bytes do not show (an outside test had 50 calls of ~300 bytes, each
// answered with 1 000 prompt tokens, all pass a budget worth 4 of them), so
// each counts mediaPartTokens; a string that only mentions a media type
// does not.
func TestEstimateCountsMediaParts(t *testing.T) {
	for body, want := range map[string]int64{
		`{"model":"m","messages":[{"role":"user","content":"UNDER"}]}`: 0,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"UNDER"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}`: 1,
		`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"x"},{"type":"input_file","file_id":"f"}]}]}`:                             2,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{}},{"type":"document","source":{}},{"type":"input_audio"}]}]}`:                 3,
		`{"model":"m","messages":[{"role":"user","content":"say \"type\":\"image_url\""}]}`:                                                                          0,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"video_url","video_url":{"url":"https://x/v.mp4"}},{"type":"text","text":"hi"}]}]}`:              1,
		`{"model":"m","messages":[{"role":"user","content":[{"t\u0079pe":"image_url","image_url":{"url":"x"}}]}]}`:                                                   1,
		`{"contents":[{"role":"user","parts":[{"inline_data":{"mime_type":"image/png","data":"iVBOR"}},{"fileData":{"fileUri":"gs://x"}},{"text":"hi"}]}]}`:          2,
	} {
		info, err := inspectBody([]byte(body), "application/json", "/v1/chat/completions")
		require.NoError(t, err)
		require.Equal(t, want, info.mediaParts, body)
	}
	p := &Proxy{opts: Options{Prices: map[string]Price{"m": {InputPerMillion: 1e6}}, EstimateMaxTokens: 1}}
	require.InDelta(t, float64(mediaPartTokens)+1, p.estimate(&call{model: "m", bodyLen: 3, mediaParts: 1}), 1e-9)
}

// TestTPMBurstIsBounded: a TPM limit reserves each admitted call's
// estimate, so a burst stops once the estimates fill the bucket (every
// call of a burst passed before: the bucket was only charged afterwards);
// the real tokens replace the estimate, and a call that never reached
// metering gives its estimate back.
func TestTPMBurstIsBounded(t *testing.T) {
	l := newLimiter()
	tpm := int64(5000)
	p := auth.Principal{KeyHash: "k", Access: &auth.Access{RateLimits: []auth.RateLimit{{Scope: "key", ID: "key:k", TPM: &tpm}}}}
	now := time.Unix(1_800_000_000, 0)
	admitted := 0
	var held []int64
	for range 50 {
		h, err := l.admit(p, now, 100, 1000)
		if err == nil {
			admitted++
			held = append(held, h)
		}
	}
	require.Equal(t, 4, admitted, "5 000 tokens hold four estimates of 1 100; the fifth does not fit")
	// The calls used 100 tokens each: their estimates come back and the
	// bucket admits again.
	for _, h := range held {
		l.charge(p, 100-h, now)
	}
	_, err := l.admit(p, now, 100, 1000)
	require.NoError(t, err)

	// A call larger than the whole limit passes only on a full bucket.
	big := auth.Principal{KeyHash: "b", Access: &auth.Access{RateLimits: []auth.RateLimit{{Scope: "key", ID: "key:b", TPM: &tpm}}}}
	h, err := l.admit(big, now, 100, 9000)
	require.NoError(t, err, "nothing used this minute")
	_, err = l.admit(big, now, 100, 100)
	require.Error(t, err, "the big call holds the minute")
	l.charge(big, 200-h, now) // it used 200
	_, err = l.admit(big, now, 100, 9000)
	require.Error(t, err, "4 800 of 5 000 left: not full, and 9 100 does not fit")
	_, err = l.admit(big, now.Add(time.Minute), 100, 9000)
	require.NoError(t, err, "full again a minute later")
}

// TestStreamEstimateFollowsTheTextRelayed: an abandoned stream of a few
// huge events is billed by the text it carried, not a token per event.
func TestStreamEstimateFollowsTheTextRelayed(t *testing.T) {
	p := &Proxy{opts: Options{EstimateMaxTokens: 1024}}
	c := &call{bodyLen: 100, choices: 1}
	small := p.estimatedUsage(c, metered{events: 3, dataBytes: 3 * 150, minData: 150})
	require.EqualValues(t, 3, small.completion, "one-token events: a token each")
	huge := p.estimatedUsage(c, metered{events: 3, dataBytes: 150 + 2*400_150, minData: 150})
	require.EqualValues(t, 200_000, huge.completion, "800 000 bytes of text")
	require.EqualValues(t, 25, huge.prompt)
}
