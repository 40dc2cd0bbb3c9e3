package websession

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// Where a browser may be sent is decided by how a browser will read the
// Location header (the WHATWG URL parser), not by how Go reads it:
// browsers drop tab and newline anywhere in a URL, treat "\" as "/",
// start an authority at "//", and resolve dot segments; proxies and
// servers in front of us may percent-decode once more before redirecting.

const maxRedirectLen = 2048

// LocalPath returns p when a browser following "Location: p" stays on
// this origin whatever it strips, flips or decodes, and ok=false
// otherwise. Accepted: an absolute path ("/ui/keys?page=2") of printable
// ASCII, with no backslash, no encoded slash or backslash in the path,
// and no empty or dot segment, before or after percent-decoding.
func LocalPath(p string) (string, bool) {
	if p == "" || len(p) > maxRedirectLen || p[0] != '/' || !printableASCII(p) || strings.Contains(p, `\`) {
		return "", false
	}
	path := p
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if low := strings.ToLower(path); strings.Contains(low, "%2f") || strings.Contains(low, "%5c") {
		return "", false
	}
	// Go's http.Redirect cleans everything before the first "?" as a path,
	// a fragment included: "/ui/x#/../../y" became "/y" (an outside test
	// left /ui/ that way). A fragment before any query may not hold "/".
	if h := strings.IndexByte(p, '#'); h >= 0 {
		if q := strings.IndexByte(p, '?'); (q < 0 || q > h) && strings.Contains(p[h:], "/") {
			return "", false
		}
	}
	// Each decoding a server or proxy might apply must stay local too.
	for form, i := p, 0; ; i++ {
		if !staysLocal(form) {
			return "", false
		}
		next, err := url.PathUnescape(form)
		if err != nil {
			return "", false
		}
		if next == form {
			break
		}
		if i == 3 {
			return "", false
		}
		form = next
	}
	return p, true
}

// UIPath is LocalPath limited to the web UI (/ui/...): the rule for
// where a sign-in, by password (next) or SSO (return_to), may land.
func UIPath(p string) (string, bool) {
	if lp, ok := LocalPath(p); ok && strings.HasPrefix(lp, "/ui/") {
		return lp, true
	}
	return "", false
}

// staysLocal: s is a path a browser resolves against this origin. Empty
// and dot segments are refused outright rather than resolved: browsers
// resolve "/@x/..//y" to "//y", which a later hop may re-read as a host,
// and no redirect target of ours needs them.
func staysLocal(s string) bool {
	if len(s) == 0 || s[0] != '/' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	path := s
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	segs := strings.Split(path[1:], "/")
	for i, seg := range segs {
		if (seg == "" && i < len(segs)-1) || seg == "." || seg == ".." {
			return false // a trailing slash is fine, "//" inside is not
		}
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && u.Opaque == ""
}

// printableASCII: no control, space or non-ASCII byte, which browsers
// strip or re-encode before parsing.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// allowEntry is one parsed KEYGATE_LOGOUT_REDIRECT_ALLOWLIST entry.
type allowEntry struct {
	scheme, host, port, path string
}

func parseAllowEntry(raw string) (allowEntry, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return allowEntry{}, err
	}
	e, ok := entryOf(u)
	if !ok {
		return allowEntry{}, errors.New("must be an absolute http(s) URL without user info, query or fragment")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return allowEntry{}, errors.New("must not carry a query or fragment")
	}
	return e, nil
}

// entryOf splits an absolute http(s) URL into what the allow-list
// compares: scheme, host (lower case), port (the scheme's default when
// absent) and escaped path.
func entryOf(u *url.URL) (allowEntry, bool) {
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return allowEntry{}, false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return allowEntry{}, false
	}
	return allowEntry{scheme: u.Scheme, host: host, port: port, path: u.EscapedPath()}, true
}

// allowed compares parsed scheme, host and port exactly, and the path by
// whole segments: "https://app.example.com" allows
// "https://app.example.com/x" but not "https://app.example.com.evil.example"
// or "https://app.example.com@evil.example". Under an entry with a path,
// the candidate's path must also be one LocalPath accepts: a browser
// resolves "/out/../evil" and "/out/%2e%2e/evil" to "/evil", and a server
// may decode "%2f" or "%5c" into a separator, so a path with a dot, empty
// or encoded separator segment (before or after percent-decoding) could
// leave the prefix it seems to be under.
func (e allowEntry) allowed(c allowEntry) bool {
	if c.scheme != e.scheme || c.host != e.host || c.port != e.port {
		return false
	}
	prefix := strings.TrimSuffix(e.path, "/")
	if prefix == "" {
		return true
	}
	if _, ok := LocalPath(c.path); !ok {
		return false
	}
	return c.path == prefix || strings.HasPrefix(c.path, prefix+"/")
}

// LogoutTarget is where sign-out sends the browser: the asked redirect
// if it is an absolute http(s) URL whose origin (and path prefix) an
// allow-list entry names, else the configured logout URL, else the
// sign-in page.
func (m *Manager) LogoutTarget(asked string) string {
	if asked != "" && len(asked) <= maxRedirectLen && printableASCII(asked) && !strings.Contains(asked, `\`) {
		if u, err := url.Parse(asked); err == nil {
			if c, ok := entryOf(u); ok {
				for _, e := range m.allow {
					if e.allowed(c) {
						return asked
					}
				}
			}
		}
	}
	if m.o.LogoutURL != "" {
		return m.o.LogoutURL
	}
	return "/ui/login"
}

// originOf is scheme://host[:port] of an absolute URL.
func originOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme == "" || u.Host == "" {
		return "", errors.New("not an absolute URL")
	}
	return u.Scheme + "://" + u.Host, nil
}

// SignOutOrigins lists the origins other than Keygate's own that
// sign-out may send a browser to: the logout URL's, the allow-listed
// redirects' and the identity providers' end-session endpoints'. The UI
// names them in its Content-Security-Policy form-action.
func (m *Manager) SignOutOrigins() []string {
	var urls []string
	if m.o.LogoutURL != "" {
		urls = append(urls, m.o.LogoutURL)
	}
	for _, e := range m.allow {
		host := e.host
		if (e.scheme == "https" && e.port != "443") || (e.scheme == "http" && e.port != "80") {
			host = net.JoinHostPort(e.host, e.port)
		} else if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		urls = append(urls, e.scheme+"://"+host)
	}
	for _, p := range m.o.Providers {
		urls = append(urls, p.EndSessionURL("", ""))
	}
	seen := map[string]bool{}
	var out []string
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !cspHost(u.Host) {
			continue
		}
		if o := u.Scheme + "://" + u.Host; !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out
}

// cspHost: only characters a host source expression may hold, so no
// configured value can end the directive.
func cspHost(h string) bool {
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return false
		}
	}
	return true
}
