package websession

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// browserResolve reads a Location value the way the WHATWG URL parser
// does against an http(s) base, for the parts that matter here: it strips
// leading and trailing C0 controls and space, removes tab and newline
// anywhere, reads "\" as "/", and removes dot segments (also "%2e" ones)
// as browsers do, which keeps empty segments ("/@x/..//y" is "//y"). It
// reports the host the browser would go to and the path it would ask
// for. decode applies n rounds of percent-decoding first, as a lenient
// proxy in front might.
func browserResolve(base *url.URL, loc string, decode int) (host, path string, ok bool) {
	for i := 0; i < decode; i++ {
		d, err := url.PathUnescape(loc)
		if err != nil {
			return "", "", false
		}
		loc = d
	}
	loc = strings.TrimFunc(loc, func(r rune) bool { return r <= 0x20 })
	loc = strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(loc)
	if i := strings.IndexAny(loc, "?#"); i >= 0 {
		loc = loc[:i]
	}
	switch {
	case strings.HasPrefix(loc, "//"):
		rest := loc[2:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i]
		}
		return rest, "", true
	case strings.Contains(loc, ":") && !strings.HasPrefix(loc, "/"):
		u, err := url.Parse(loc)
		if err != nil {
			return "", "", false
		}
		return u.Host + "(" + u.Scheme + ")", u.Path, true
	case !strings.HasPrefix(loc, "/"):
		loc = "/ui/" + loc
	}
	var out []string
	for _, seg := range strings.Split(loc[1:], "/") {
		switch strings.ToLower(seg) {
		case ".", "%2e":
		case "..", ".%2e", "%2e.", "%2e%2e":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	return base.Host, "/" + strings.Join(out, "/"), true
}

func attacks() []string {
	return []string{
		"//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example", "/\t/evil.example/phish",
		"/\n/evil.example", "/\r/evil.example", "\t//evil.example", "/%09/evil.example", "/%2F/evil.example",
		"/%2f%2fevil.example", "/%5Cevil.example", "/%5cevil.example", "%2F%2Fevil.example", "https://evil.example/",
		"http:evil.example", "javascript:alert(1)", "//user@evil.example", "/@evil.example/..//x", " //evil.example",
		"/ui/\\\\evil.example", "//%09evil.example", "/%252F/evil.example", "data:text/html,x", "/\x00/evil.example",
		"/\u3000/evil.example", "https:/\\evil.example", "//evil.example@good", "/.//evil.example", "\x7f//evil.example",
		"/./%2e/%2F/evil.example", "/%2e%2e//evil.example", "/ui/..%2F..%2F%2Fevil.example", "/ui/../..//evil.example",
		"/%25252F/evil.example", "", "ui/keys", "?next=//evil.example", "#//evil.example",
		"/ui/x#/../../y", "/ui/a/b#/../../../key/generate", "/ui/x#/../..//evil.example", "/ui/x#/../../?x",
	}
}

func TestLocalPathRefusesWhatBrowsersSendAway(t *testing.T) {
	for _, a := range attacks() {
		got, ok := LocalPath(a)
		require.False(t, ok, "%q accepted as %q", a, got)
	}
	for _, good := range []string{"/", "/ui/", "/ui/keys?page=2", "/ui/users?q=a%40b.example&page=3", "/ui/spend?scope=all#top",
		"/ui/x#top", "/ui/x?a=1#/b",
		"/ui/users?q=%2F", "/ui/caf%C3%A9"} {
		got, ok := LocalPath(good)
		require.True(t, ok, good)
		require.Equal(t, good, got)
	}
}

func TestBrowserResolveModel(t *testing.T) {
	base, _ := url.Parse("https://keygate.example/ui/login")
	for loc, want := range map[string]string{"/@x/..//y": "keygate.example //y", "/\t/evil": "evil ", "/\\evil": "evil ",
		"/ui/keys": "keygate.example /ui/keys", "/%2e%2e/a": "keygate.example /a"} {
		host, path, ok := browserResolve(base, loc, 0)
		require.True(t, ok, loc)
		require.Equal(t, want, host+" "+path, loc)
	}
}

// FuzzLocalPath: whatever LocalPath accepts, a browser (and a proxy that
// percent-decodes before redirecting) resolves on this origin.
func FuzzLocalPath(f *testing.F) {
	for _, a := range attacks() {
		f.Add(a)
	}
	f.Add("/ui/keys?page=2")
	base, _ := url.Parse("https://keygate.example/ui/login")
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := LocalPath(s)
		if !ok {
			return
		}
		for decode := 0; decode <= 2; decode++ {
			host, path, parsed := browserResolve(base, p, decode)
			if !parsed {
				continue
			}
			if host != base.Host || strings.HasPrefix(path, "//") {
				t.Fatalf("%q (decoded %d times) leaves the origin: host %q path %q", p, decode, host, path)
			}
		}
	})
}

func TestLogoutTargetComparesParsedOrigins(t *testing.T) {
	m, err := New(Options{LogoutURL: "https://intranet.example/bye",
		LogoutAllowlist: []string{"https://app.example.com", "https://portal.example.com/signed-out", "http://localhost:3000/"}})
	require.NoError(t, err)
	for in, want := range map[string]string{
		"https://app.example.com":                      "https://app.example.com",
		"https://app.example.com/":                     "https://app.example.com/",
		"https://App.Example.com:443/x?y=1":            "https://App.Example.com:443/x?y=1",
		"https://portal.example.com/signed-out":        "https://portal.example.com/signed-out",
		"https://portal.example.com/signed-out/thanks": "https://portal.example.com/signed-out/thanks",
		"http://localhost:3000/after":                  "http://localhost:3000/after",
		"https://app.example.com.evil.example":         "https://intranet.example/bye",
		"https://app.example.com@evil.example":         "https://intranet.example/bye",
		"https://app.example.com:x@evil.example":       "https://intranet.example/bye",
		"https://app.example.com%2F@evil.example":      "https://intranet.example/bye",
		"https://app.example.com\\@evil.example":       "https://intranet.example/bye",
		"https://app.example.com\t.evil.example":       "https://intranet.example/bye",
		"https://app.example.com:8443/":                "https://intranet.example/bye",
		"http://app.example.com/":                      "https://intranet.example/bye",
		"https://portal.example.com/signed-outside":    "https://intranet.example/bye",
		"https://portal.example.com/":                  "https://intranet.example/bye",
		"http://localhost:3001/":                       "https://intranet.example/bye",
		"http://localhost/":                            "https://intranet.example/bye",
		"//app.example.com/":                           "https://intranet.example/bye",
		"javascript://app.example.com/%0aalert(1)":     "https://intranet.example/bye",
		"": "https://intranet.example/bye",
	} {
		require.Equal(t, want, m.LogoutTarget(in), in)
	}
	m, err = New(Options{})
	require.NoError(t, err)
	require.Equal(t, "/ui/login", m.LogoutTarget("https://anything.example/"))

	for _, bad := range []string{"app.example.com", "ftp://app.example.com", "https://u:p@app.example.com", "https://app.example.com/?q=1", "/relative"} {
		_, err := New(Options{LogoutAllowlist: []string{bad}})
		require.Error(t, err, bad)
	}
}

// TestLogoutTargetStaysUnderTheEntrysPath: a redirect on an entry's
// origin whose path a browser (or a server that percent-decodes) resolves
// outside the entry's path falls back to the logout URL.
func TestLogoutTargetStaysUnderTheEntrysPath(t *testing.T) {
	m, err := New(Options{LogoutURL: "https://intranet.example/bye", LogoutAllowlist: []string{"https://app.example.com/out"}})
	require.NoError(t, err)
	base, _ := url.Parse("https://app.example.com/out/")
	for _, in := range []string{
		"https://app.example.com/out/../../evil", "https://app.example.com/out/../evil", "https://app.example.com/out/%2e%2e/x",
		"https://app.example.com/out/%2E./x", "https://app.example.com/out/.%2e/x", "https://app.example.com/out/%2E%2E/x",
		"https://app.example.com/out/./../x", "https://app.example.com/out/.", "https://app.example.com/out/..",
		"https://app.example.com/out/..%2fx", "https://app.example.com/out%2f..%2fx", "https://app.example.com/out/%2F/x",
		"https://app.example.com/out/%5c../x", "https://app.example.com/out/\\../x", "https://app.example.com/out//evil",
		"https://app.example.com/out/%252e%252e/x", "https://app.example.com/out/x/../../y", "https://app.example.com/out/%2e",
		"https://app.example.com/out/./x",
	} {
		require.Equal(t, "https://intranet.example/bye", m.LogoutTarget(in), in)
	}
	for _, in := range []string{"https://app.example.com/out", "https://app.example.com/out/", "https://app.example.com/out/thanks?x=1",
		"https://app.example.com/out/a/b", "https://app.example.com/out/caf%C3%A9"} {
		require.Equal(t, in, m.LogoutTarget(in), in)
		u, err := url.Parse(in)
		require.NoError(t, err)
		_, p, ok := browserResolve(base, u.EscapedPath(), 0)
		require.True(t, ok)
		require.True(t, p == "/out" || strings.HasPrefix(p, "/out/"), "%s resolves to %s", in, p)
	}
}

func TestSignOutOrigins(t *testing.T) {
	m, err := New(Options{LogoutURL: "https://intranet.example/bye?x=1",
		LogoutAllowlist: []string{"https://app.example.com/out", "http://localhost:3000", "https://intranet.example:443/other"}})
	require.NoError(t, err)
	require.Equal(t, []string{"https://intranet.example", "https://app.example.com", "http://localhost:3000"}, m.SignOutOrigins())
	m, err = New(Options{LogoutURL: "/ui/login"})
	require.NoError(t, err)
	require.Empty(t, m.SignOutOrigins(), "a same-origin logout page needs no source")
}
