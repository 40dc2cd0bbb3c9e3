package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// SSE handling limits.
const (
	// minRead is the least free space offered to each upstream read.
	minRead = 4 << 10
	// maxEvent: an event still unterminated at this size is passed on as
	// it is rather than held (and is then not inspected).
	maxEvent = 1 << 20
)

// sseBody relays a Server-Sent Events stream event by event. Each
// upstream read is split into complete events, which are inspected for
// usage and handed on at once (the ReverseProxy flushes every write); only
// an incomplete trailing event waits for its next bytes. Nothing but that
// fragment and the events of one read is ever held.
type sseBody struct {
	src   io.ReadCloser
	p     *Proxy
	c     *call
	strip bool

	in  []byte // received bytes not yet split into events
	out []byte // events ready for the client
	off int    // read position in out
	err error  // the upstream's sticky error

	m      metered
	peeked bool // the first chunk's id and model have been read
}

func newSSEBody(src io.ReadCloser, p *Proxy, c *call) *sseBody {
	return &sseBody{src: src, p: p, c: c, strip: c.strip, in: make([]byte, 0, minRead)}
}

func (b *sseBody) Read(p []byte) (int, error) {
	for {
		if b.off < len(b.out) {
			n := copy(p, b.out[b.off:])
			b.off += n
			if b.off == len(b.out) {
				b.out, b.off = b.out[:0], 0
			}
			return n, nil
		}
		if b.err != nil {
			if errors.Is(b.err, io.EOF) {
				b.p.finish(b.c, b.metered)
			}
			return 0, b.err
		}
		if cap(b.in)-len(b.in) < minRead {
			grown := make([]byte, len(b.in), 2*cap(b.in)+minRead)
			copy(grown, b.in)
			b.in = grown
		}
		n, err := b.src.Read(b.in[len(b.in):cap(b.in)])
		b.in = b.in[:len(b.in)+n]
		b.split()
		if err != nil {
			b.err = err
			if errors.Is(err, io.EOF) && len(b.in) > 0 {
				// A last event without its blank line.
				b.event(b.in)
				b.in = b.in[:0]
			}
		}
	}
}

// Close meters the stream as far as it went (a client that went away
// before the usage chunk is billed an estimate of what it received).
func (b *sseBody) Close() error {
	err := b.src.Close()
	b.p.finish(b.c, b.metered)
	return err
}

func (b *sseBody) metered() metered {
	m := b.m
	// A stream whose usage never came is billed by estimate whether it was
	// cut or the upstream ignored include_usage.
	m.cut = true
	return m
}

// split hands every complete event in b.in to event and keeps the rest.
func (b *sseBody) split() {
	start := 0
	for {
		end := eventEnd(b.in[start:])
		if end < 0 {
			break
		}
		b.event(b.in[start : start+end])
		start += end
	}
	if len(b.in)-start > maxEvent {
		b.out = append(b.out, b.in[start:]...)
		start = len(b.in)
	}
	b.in = b.in[:copy(b.in, b.in[start:])]
}

// eventEnd returns the length of the first event in buf including the
// blank line that ends it, or -1.
func eventEnd(buf []byte) int {
	end := -1
	if i := bytes.Index(buf, []byte("\n\n")); i >= 0 {
		end = i + 2
	}
	if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 && (end < 0 || i+4 < end) {
		end = i + 4
	}
	return end
}

// event inspects one event and queues it for the client unless it is the
// usage chunk the client did not ask for.
func (b *sseBody) event(ev []byte) {
	if data := eventData(ev); len(data) > 0 && !bytes.Equal(data, []byte("[DONE]")) {
		b.m.events++
		size := int64(len(data))
		b.m.dataBytes += size
		if b.m.minData == 0 || size < b.m.minData {
			b.m.minData = size
		}
		if !b.inspect(data) {
			return
		}
	}
	b.out = append(b.out, ev...)
}

// inspect reads id, model and usage from a chunk and reports whether the
// client gets it.
func (b *sseBody) inspect(data []byte) bool {
	if !b.peeked {
		b.peeked = true
		var head struct {
			ID    string `json:"id"`
			Model string `json:"model"`
		}
		if json.Unmarshal(data, &head) == nil {
			b.m.id, b.m.model = head.ID, head.Model
		}
	}
	if !hasUsageObject(data) {
		return true // every chunk but the last: skip the full decode
	}
	var a answer
	if json.Unmarshal(data, &a) != nil {
		return true
	}
	m := a.metered()
	if !m.u.seen {
		return true
	}
	b.m.u = m.u
	if m.id != "" {
		b.m.id = m.id
	}
	if m.model != "" && b.m.model == "" {
		b.m.model = m.model
	}
	return !(b.strip && isEmptyArray(a.Choices))
}

// eventData returns the event's data: the payload of its data lines,
// joined by newlines (a copy only when there are several).
func eventData(ev []byte) []byte {
	var data []byte
	lines := 0
	for len(ev) > 0 {
		line := ev
		if i := bytes.IndexByte(ev, '\n'); i >= 0 {
			line, ev = ev[:i], ev[i+1:]
		} else {
			ev = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		payload := bytes.TrimPrefix(line[len("data:"):], []byte(" "))
		lines++
		switch lines {
		case 1:
			data = payload
		case 2:
			data = append(append(append([]byte(nil), data...), '\n'), payload...)
		default:
			data = append(append(data, '\n'), payload...)
		}
	}
	return data
}

// hasUsageObject reports whether data holds "usage": { ... } (chunks
// before the last carry "usage": null or nothing).
func hasUsageObject(data []byte) bool {
	key := []byte(`"usage"`)
	for {
		i := bytes.Index(data, key)
		if i < 0 {
			return false
		}
		data = data[i+len(key):]
		rest := bytes.TrimLeft(data, " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			rest = bytes.TrimLeft(rest[1:], " \t\r\n")
			if len(rest) > 0 && rest[0] == '{' {
				return true
			}
		}
	}
}

// isEmptyArray reports whether raw is the JSON array [].
func isEmptyArray(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	if len(t) < 2 || t[0] != '[' || t[len(t)-1] != ']' {
		return false
	}
	return len(bytes.TrimSpace(t[1:len(t)-1])) == 0
}
