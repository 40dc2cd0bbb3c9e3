package upstream

import (
	"github.com/keygate/keygate/internal/access"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/httperr"
)

// maxModelList bounds a model list read for filtering.
const maxModelList = 8 << 20

// errUnreadable marks an upstream answer the proxy had to read (a model
// list) and could not.
var errUnreadable = errors.New("upstream: unreadable answer")

// statusClientClosed is logged and "sent" when the client went away before
// the upstream answered (nginx's 499); nobody receives it.
const statusClientClosed = 499

// modifyResponse filters model lists and wraps successful bodies with the
// metering reader. Error answers pass through unmetered.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	c := callFrom(resp.Request.Context())
	if c == nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil
	}
	if c.listModels {
		return p.filterModels(resp, c)
	}
	ce := resp.Header.Get("Content-Encoding")
	encoded := ce != "" && !strings.EqualFold(ce, "identity")
	if isEventStream(resp.Header.Get("Content-Type")) && !encoded {
		if c.strip {
			// The body will be shorter than the upstream said.
			resp.Header.Del("Content-Length")
			resp.ContentLength = -1
		}
		resp.Body = newSSEBody(resp.Body, p, c)
		return nil
	}
	// Only JSON answers carry usage; audio or file content passes
	// without a copy being kept.
	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	resp.Body = newJSONBody(resp.Body, p, c, !encoded && (ct == "" || strings.Contains(ct, "json")))
	return nil
}

func isEventStream(ct string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "text/event-stream")
}

// filterModels keeps the entries of a model list the caller may use. The
// list is small, so it is read whole; an unreadable list fails closed.
func (p *Proxy) filterModels(resp *http.Response, c *call) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxModelList+1))
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%w: read model list: %w", errUnreadable, err)
	}
	if len(b) > maxModelList {
		return fmt.Errorf("%w: model list larger than %d bytes", errUnreadable, maxModelList)
	}
	var doc map[string]json.RawMessage
	var data []json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%w: decode model list: %w", errUnreadable, err)
	}
	if err := json.Unmarshal(doc["data"], &data); err != nil {
		return fmt.Errorf("%w: decode model list data: %w", errUnreadable, err)
	}
	kept := make([]json.RawMessage, 0, len(data))
	for _, m := range data {
		var v struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m, &v) == nil && v.ID != "" && access.ModelAllowedFor(c.principal, v.ID) {
			kept = append(kept, m)
		}
	}
	if len(kept) != len(data) {
		raw, err := marshalRaw(kept)
		if err != nil {
			return fmt.Errorf("%w: encode model list: %w", errUnreadable, err)
		}
		doc["data"] = raw
		if b, err = marshalRaw(doc); err != nil {
			return fmt.Errorf("%w: encode model list: %w", errUnreadable, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return nil
}

// errorHandler answers transport failures: 504 when the upstream did not
// answer in time, 502 when it could not be reached or answered garbage.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		p.log.Debug("upstream: client went away before the answer", "path", r.URL.Path, "err", err)
		if c := callFrom(r.Context()); c != nil {
			// The upstream had the request and may have spent tokens on
			// it: bill the estimate, or leaving early would be free.
			p.finish(c, func() metered { return metered{cut: true, events: -1} })
		}
		w.WriteHeader(statusClientClosed)
		return
	}
	e := &apperr.Error{Kind: apperr.KindBadGateway, Message: "The upstream LLM proxy could not be reached.", Err: err}
	var op *net.OpError
	switch {
	case errors.As(err, &op) && op.Op == "dial":
		// A refused or timed-out connect means "down", not "slow".
	case isTimeout(err):
		e = &apperr.Error{Kind: apperr.KindGatewayTimeout, Message: "The upstream LLM proxy did not answer in time.", Err: err}
	case errors.Is(err, errUnreadable):
		e.Message = "The upstream LLM proxy sent an answer Keygate could not read."
	}
	p.fail(w, r, e)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// fail writes err in LiteLLM's JSON error shape, with the status and
// message internal/httperr gives it everywhere else.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	// LiteLLM's statuses: clients of forwarding mode were written for it.
	status, typ, msg, param, retry := httperr.ResolveLiteLLM(err)
	if status >= 500 {
		p.log.Error("upstream: request failed", "status", status, "path", r.URL.Path, "err", err)
	} else {
		p.log.Debug("upstream: request rejected", "status", status, "path", r.URL.Path, "err", err)
	}
	if param == "" {
		param = "None"
	}
	body, _ := json.Marshal(httperr.Body{Error: httperr.Detail{Message: msg, Type: typ, Param: param, Code: strconv.Itoa(status)}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if retry > 0 {
		h.Set("Retry-After", strconv.Itoa(retry))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
