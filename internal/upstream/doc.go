// Package upstream is Keygate's forwarding mode: a plain net/http handler
// that sits in front of an OpenAI-compatible LLM proxy (LiteLLM or any
// gateway), authenticates every call like /auth/verify, checks the
// requested model and the caller's budgets before anything leaves the
// process, forwards the request with the client's credential replaced by
// the upstream key, and meters the answer.
//
// Forwarding streams in both directions that matter: responses are never
// buffered whole (Server-Sent Events are flushed chunk by chunk as they
// arrive), and a client that goes away cancels the upstream request. The
// request body is the exception: it is read (up to Options.MaxBodyBytes)
// because the model to check is inside it.
//
// Metering reads "usage" from JSON answers and from the final chunk of a
// chat or text completion stream. When a streaming client did not ask for
// that chunk (stream_options.include_usage), the proxy asks for it on the
// client's behalf and keeps it from the client, because clients that did
// not ask index choices[0] of every chunk. Each forwarded request that
// names a model or reports usage becomes exactly one store.SpendEntry,
// written by a small pool of workers so the response never waits on the
// database; Close drains them.
//
// Rate limits (a key's rpm_limit and tpm_limit) are token buckets kept in
// memory by each Proxy, that is per instance: N replicas behind a load
// balancer admit up to N times a key's limit between them. Requests per
// minute are taken when a request is admitted; tokens per minute are
// charged when its response has been metered, and a request is admitted
// while the key's token bucket is still positive, so one large answer can
// overdraw it and the key then waits until the bucket refills.
package upstream
