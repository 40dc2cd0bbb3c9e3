package websession

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
)

// The pre-session form token is bound to the browser's nonce cookie.
func TestFormToken(t *testing.T) {
	m, err := New(Options{Key: []byte("k")})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/ui/login", nil)
	tok, err := m.FormToken(w, r)
	require.NoError(t, err)
	nonce := w.Result().Cookies()[0]
	require.Equal(t, FormCookie, nonce.Name)
	require.True(t, nonce.HttpOnly)
	again, err := m.FormToken(httptest.NewRecorder(), r)
	require.NoError(t, err)
	require.Equal(t, tok, again, "one nonce per request")

	post := func(cookie, token string, hdr map[string]string) error {
		r := httptest.NewRequest(http.MethodPost, "/ui/login", strings.NewReader(url.Values{"csrf_token": {token}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: FormCookie, Value: cookie})
		}
		return m.CheckForm(r)
	}
	require.NoError(t, post(nonce.Value, tok, nil))
	require.ErrorIs(t, post("", tok, nil), ErrForm)
	require.ErrorIs(t, post(nonce.Value, "", nil), ErrForm)
	require.ErrorIs(t, post(nonce.Value, nonce.Value, nil), ErrForm, "the cookie itself is not the token")
	require.ErrorIs(t, post(strings.Repeat("x", 43), tok, nil), ErrForm)
	require.ErrorIs(t, post(nonce.Value, tok, map[string]string{"Sec-Fetch-Site": "cross-site"}), ErrCrossOrigin)
}

// CheckOrigin follows Sec-Fetch-Site, else Origin against Host, and
// trusts the configured base (a proxy may rewrite Host).
func TestCheckOrigin(t *testing.T) {
	m, err := New(Options{BaseURL: "https://keygate.example.com/prefix"})
	require.NoError(t, err)
	for hdr, want := range map[[2]string]error{
		{"", ""}:                            nil, // not a browser
		{"same-origin", ""}:                 nil,
		{"none", ""}:                        nil, // typed into the address bar
		{"cross-site", ""}:                  ErrCrossOrigin,
		{"same-site", ""}:                   ErrCrossOrigin,
		{"", "http://internal:4100"}:        nil, // the request's own Host
		{"", "https://keygate.example.com"}: nil, // the configured base
		{"", "https://evil.example"}:        ErrCrossOrigin,
		{"", "null"}:                        ErrCrossOrigin,
		{"cross-site", "https://keygate.example.com"}: nil,
	} {
		r := httptest.NewRequest(http.MethodPost, "http://internal:4100/login", nil)
		if hdr[0] != "" {
			r.Header.Set("Sec-Fetch-Site", hdr[0])
		}
		if hdr[1] != "" {
			r.Header.Set("Origin", hdr[1])
		}
		require.Equal(t, want, m.CheckOrigin(r), "%v", hdr)
	}
	get := httptest.NewRequest(http.MethodGet, "/", nil)
	get.Header.Set("Sec-Fetch-Site", "cross-site")
	require.NoError(t, m.CheckOrigin(get), "reads are not state changes")
}

// CheckWrite wants the session's own token, by header or form field.
func TestCheckWrite(t *testing.T) {
	m, err := New(Options{Key: []byte("k")})
	require.NoError(t, err)
	p := auth.Principal{Method: auth.MethodSession, SessionID: "s1"}
	mk := func(header, field string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/key/generate", strings.NewReader(url.Values{"csrf_token": {field}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if header != "" {
			r.Header.Set(CSRFHeader, header)
		}
		return r
	}
	require.NoError(t, m.CheckWrite(mk(m.CSRFToken("s1"), ""), p))
	require.NoError(t, m.CheckWrite(mk("", m.CSRFToken("s1")), p))
	require.ErrorIs(t, m.CheckWrite(mk(m.CSRFToken("s2"), ""), p), ErrCSRF, "another session's token")
	require.ErrorIs(t, m.CheckWrite(mk("", ""), p), ErrCSRF)
	require.ErrorIs(t, m.CheckWrite(mk(m.CSRFToken("s1"), ""), auth.Principal{}), ErrCSRF, "no session, no token")
	other, err := New(Options{Key: []byte("other deployment")})
	require.NoError(t, err)
	require.ErrorIs(t, m.CheckWrite(mk(other.CSRFToken("s1"), ""), p), ErrCSRF)
}
