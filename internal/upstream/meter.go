package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/keygate/keygate/internal/budget"
	"github.com/keygate/keygate/store"
)

// usage is the token count of one answer.
type usage struct {
	prompt, completion int64
	seen               bool
}

// usageJSON reads both spellings: prompt/completion (chat, completions,
// embeddings) and input/output (the Responses API).
type usageJSON struct {
	PromptTokens     *int64 `json:"prompt_tokens"`
	CompletionTokens *int64 `json:"completion_tokens"`
	InputTokens      *int64 `json:"input_tokens"`
	OutputTokens     *int64 `json:"output_tokens"`
}

func (u *usageJSON) usage() usage {
	pick := func(a, b *int64) int64 {
		switch {
		case a != nil:
			return *a
		case b != nil:
			return *b
		}
		return 0
	}
	return usage{prompt: pick(u.PromptTokens, u.InputTokens), completion: pick(u.CompletionTokens, u.OutputTokens), seen: true}
}

// answer is the part of a JSON answer or stream chunk metering reads.
type answer struct {
	ID       string          `json:"id"`
	Model    string          `json:"model"`
	Choices  json.RawMessage `json:"choices"`
	Usage    *usageJSON      `json:"usage"`
	Response *struct {
		ID    string     `json:"id"`
		Model string     `json:"model"`
		Usage *usageJSON `json:"usage"`
	} `json:"response"`
}

// metered is what one answer reported.
type metered struct {
	id, model string
	u         usage
	// cut: the answer ended before its end (the client went away or the
	// upstream failed), so its usage may never have arrived.
	cut bool
	// events counts the stream's data events relayed (-1: not a stream);
	// dataBytes is their total size and minData the smallest's.
	events, dataBytes, minData int64
}

func (a *answer) metered() metered {
	m := metered{id: a.ID, model: a.Model}
	if a.Usage != nil {
		m.u = a.Usage.usage()
	}
	if r := a.Response; r != nil {
		if m.id == "" {
			m.id = r.ID
		}
		if m.model == "" {
			m.model = r.Model
		}
		if !m.u.seen && r.Usage != nil {
			m.u = r.Usage.usage()
		}
	}
	return m
}

// finish meters the call once: it charges the key's token bucket and
// queues the spend entry. read is evaluated only the first time, so the
// end of the body and its Close may both call finish.
func (p *Proxy) finish(c *call, read func() metered) {
	c.done.Do(func() {
		m := read()
		model := c.model
		if model == "" {
			model = m.model
		}
		if !m.u.seen && model != "" && m.cut {
			// Served (part of) an answer whose usage never came: bill an
			// estimate rather than nothing, or abandoning every stream
			// before its last chunk would make calls free.
			m.u = p.estimatedUsage(c, m)
			p.log.Info("upstream: answer ended before its usage; billed an estimate",
				"model", clean(model, maxModelLen), "prompt_tokens", m.u.prompt, "completion_tokens", m.u.completion)
		}
		p.limits.charge(c.principal, m.u.prompt+m.u.completion-c.tpmHeld, p.opts.Now())
		if c.model == "" && !m.u.seen {
			return // nothing model-related happened (a file listing, say)
		}
		id := m.id
		if id == "" {
			id = uuid.NewString()
		}
		a := c.principal
		e := store.SpendEntry{
			RequestID: clean(id, maxIDLen), KeyHash: a.KeyHash, UserID: a.UserID, TeamID: a.KeyTeamID, Model: clean(model, maxModelLen),
			PromptTokens: m.u.prompt, CompletionTokens: m.u.completion,
			Spend: p.price(model, m.model, m.u), CreatedAt: p.opts.Now(),
		}
		if c.hold != nil {
			// The real cost stays held until the recorded spend is in the
			// cached budget figures (settled), so no call slips through
			// between the two.
			c.hold.Settle(e.Spend)
			p.holds.add(e.RequestID, c.hold)
			e.HoldID = c.hold.SharedID()
		}
		c.metered.Store(true)
		p.rec.enqueue(e)
	})
}

// estimatedUsage stands in for the usage of an answer cut short: the
// prompt at one token per four bytes of request body; as output, for a
// stream, the text relayed at one token per four bytes (each event's size
// beyond the smallest event's, which is the framing every event carries)
// and at least a token per event; for a JSON answer — generated in full
// before it was sent, or abandoned before it came — the output bound the
// reservation used.
func (p *Proxy) estimatedUsage(c *call, m metered) usage {
	u := usage{prompt: int64(c.bodyLen+3) / 4, seen: true}
	if m.events >= 0 {
		text := m.dataBytes - m.events*m.minData
		u.completion = max(m.events, (text+3)/4)
		return u
	}
	out := c.maxTokens
	if out <= 0 {
		out = p.opts.EstimateMaxTokens
	}
	u.completion = out * max(c.choices, 1)
	return u
}

// estimatedTokens is what a call may use at most, for its reservations:
// the prompt counted as one token per three bytes of body (more than any
// tokenizer counts text) plus mediaPartTokens per media content
// part (mediaType), and the output bound the request sets — or
// Options.EstimateMaxTokens — for each answer it asks for (n, best_of).
func (p *Proxy) estimatedTokens(c *call) (prompt, output int64) {
	out := c.maxTokens
	if out <= 0 {
		out = p.opts.EstimateMaxTokens
	}
	return int64(c.bodyLen+2)/3 + c.mediaParts*mediaPartTokens, out * max(c.choices, 1)
}

// estimate is what a call may cost at most (estimatedTokens at the model's
// prices), for its budget reservation. Unpriced models cost nothing.
func (p *Proxy) estimate(c *call) float64 {
	price, ok := p.opts.Prices[c.model]
	if !ok {
		return 0
	}
	prompt, output := p.estimatedTokens(c)
	return float64(prompt)*price.InputPerMillion/1e6 + float64(output)*price.OutputPerMillion/1e6
}

// holdTable keeps the reservations of calls whose spend waits in the
// recorder, by request id (two calls may share one when an upstream
// reuses response ids).
type holdTable struct {
	mu sync.Mutex
	m  map[string][]*budget.Hold
}

func (t *holdTable) add(id string, h *budget.Hold) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string][]*budget.Hold{}
	}
	t.m[id] = append(t.m[id], h)
}

// release ends the reservations of the entries the recorder is done with
// (written, set aside or lost); parked entries keep theirs until replayed.
func (t *holdTable) release(ids ...string) {
	t.mu.Lock()
	var hs []*budget.Hold
	for _, id := range ids {
		hs = append(hs, t.m[id]...)
		delete(t.m, id)
	}
	t.mu.Unlock()
	for _, h := range hs {
		h.Release()
	}
}

// Bounds on the upstream-supplied strings of a spend entry.
const (
	maxIDLen    = 200
	maxModelLen = 256
)

// clean makes an upstream-supplied string storable on every database:
// valid UTF-8 without NUL bytes (which PostgreSQL refuses), at most max
// bytes. The model comes from the client's request and the id from the
// upstream's answer; neither may make a spend entry unstorable.
func clean(s string, max int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
	}
	return s
}

// price is tokens × price per million; a model without a price costs 0
// and is logged once.
func (p *Proxy) price(model, answered string, u usage) float64 {
	pr, ok := p.opts.Prices[model]
	if !ok && answered != "" {
		pr, ok = p.opts.Prices[answered]
	}
	if !ok {
		p.warnUnpriced(model)
		return 0
	}
	return float64(u.prompt)*pr.InputPerMillion/1e6 + float64(u.completion)*pr.OutputPerMillion/1e6
}

func (p *Proxy) warnUnpriced(model string) {
	p.warnMu.Lock()
	_, seen := p.warned[model]
	if !seen && len(p.warned) < maxWarnedModels {
		p.warned[model] = struct{}{}
	}
	p.warnMu.Unlock()
	if !seen {
		p.log.Warn("upstream: no price for model; its spend is recorded as 0", "model", model)
	}
}

// JSON answers are kept whole up to maxCapture to read usage at the end;
// past that only the last tailSize bytes are kept, where OpenAI-style
// answers put "usage".
const (
	maxCapture = 256 << 10
	tailSize   = 16 << 10
)

// jsonBody passes a non-streaming answer through untouched while keeping
// a bounded copy for metering at EOF.
type jsonBody struct {
	src   io.ReadCloser
	p     *Proxy
	c     *call
	parse bool // false for compressed or non-JSON answers, which are not read
	head  []byte
	tail  []byte
	over  bool
	eof   bool
}

func newJSONBody(src io.ReadCloser, p *Proxy, c *call, parse bool) *jsonBody {
	return &jsonBody{src: src, p: p, c: c, parse: parse}
}

func (b *jsonBody) Read(buf []byte) (int, error) {
	n, err := b.src.Read(buf)
	if n > 0 && b.parse {
		b.capture(buf[:n])
	}
	if errors.Is(err, io.EOF) {
		b.eof = true
		b.p.finish(b.c, b.metered)
	}
	return n, err
}

// Close meters what arrived if the body was not read to its end (the
// client went away): a truncated answer is billed an estimate.
func (b *jsonBody) Close() error {
	err := b.src.Close()
	b.p.finish(b.c, b.metered)
	return err
}

func (b *jsonBody) capture(d []byte) {
	if !b.over {
		if len(b.head)+len(d) <= maxCapture {
			b.head = append(b.head, d...)
			return
		}
		b.over = true
		keep := b.head[max(0, len(b.head)-tailSize):]
		b.tail = append(make([]byte, 0, 2*tailSize), keep...)
		b.head = nil
	}
	b.tail = append(b.tail, d...)
	if len(b.tail) > 2*tailSize {
		b.tail = b.tail[:copy(b.tail, b.tail[len(b.tail)-tailSize:])]
	}
}

func (b *jsonBody) metered() metered {
	m := b.read()
	m.cut, m.events = !b.eof, -1
	return m
}

func (b *jsonBody) read() metered {
	defer func() { b.head, b.tail = nil, nil }()
	if !b.parse {
		return metered{}
	}
	if !b.over {
		var a answer
		if json.Unmarshal(b.head, &a) != nil {
			return metered{}
		}
		return a.metered()
	}
	return metered{u: usageFromTail(b.tail)}
}

// usageFromTail decodes the last "usage" object in the tail of a large
// answer (embeddings of many inputs, say).
func usageFromTail(tail []byte) usage {
	i := bytes.LastIndex(tail, []byte(`"usage"`))
	if i < 0 {
		return usage{}
	}
	rest := bytes.TrimLeft(tail[i+len(`"usage"`):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return usage{}
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 || rest[0] != '{' {
		return usage{}
	}
	var u usageJSON
	if json.NewDecoder(bytes.NewReader(rest)).Decode(&u) != nil {
		return usage{}
	}
	return u.usage()
}
