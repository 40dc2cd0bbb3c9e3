package upstream

import (
	"testing"

	"github.com/stretchr/testify/require"

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
	require.InDelta(t, 10*p.estimate("m", 0, one.maxTokens, one.choices), p.estimate("m", 0, ten.maxTokens, ten.choices), 1e-12)

	for _, body := range []string{`{"model":"m","n":"10"}`, `{"model":"m","n":0}`, `{"model":"m","n":1.5}`, `{"model":"m","best_of":1000}`,
		`{"model":"m","stream":"true"}`, `{"model":"m","stream":1}`} {
		_, err := inspectBody([]byte(body), "application/json", "/v1/chat/completions")
		require.Equal(t, apperr.KindInvalid, apperr.KindOf(err), body)
	}
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
