package auth

import (
	"net/http"
	"strings"
	"testing"
)

// cookieValue must find exactly what (*http.Request).Cookie finds.
func cookieCases() [][]string {
	many := strings.Repeat("a=b; ", maxCookies) + "keygate_session=tok"
	return [][]string{
		nil,
		{""},
		{"keygate_session=tok"},
		{"  keygate_session=tok  "},
		{"a=b; keygate_session=tok; c=d"},
		{"a=b;keygate_session=tok"},
		{"keygate_session=\"tok\""},
		{"keygate_session=\""},
		{"keygate_session=\"\""},
		{"keygate_session="},
		{"keygate_session"},
		{"keygate_session=to\\k; keygate_session=second"},
		{"keygate_session=to k"},
		{"keygate_session=t\"ok"},
		{"keygate_session=tök; keygate_session=ok"},
		{" keygate_session = tok "},
		{"keygate_sessionx=tok"},
		{"xkeygate_session=tok"},
		{"KEYGATE_SESSION=tok"},
		{"a=b", "keygate_session=second-line"},
		{"keygate_session=first", "keygate_session=second"},
		{";;; keygate_session=tok;;"},
		{"keygate_session=a=b"},
		{"keygate_session=\ttok"},
		{many},
		{strings.Repeat("a=b; ", maxCookies-1) + "keygate_session=tok"},
	}
}

func TestCookieValueMatchesNetHTTP(t *testing.T) {
	for _, lines := range cookieCases() {
		checkCookieValue(t, lines)
	}
}

func FuzzCookieValue(f *testing.F) {
	for _, lines := range cookieCases() {
		if len(lines) == 1 && len(lines[0]) < 200 {
			f.Add(lines[0], "")
		}
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		checkCookieValue(t, []string{a, b})
	})
}

func checkCookieValue(t *testing.T, lines []string) {
	t.Helper()
	r := &http.Request{Header: http.Header{}}
	if lines != nil {
		r.Header["Cookie"] = lines
	}
	want, wantOK := "", false
	if ck, err := r.Cookie("keygate_session"); err == nil {
		want, wantOK = ck.Value, true
	}
	got, ok := cookieValue(r.Header, "keygate_session")
	if got != want || ok != wantOK {
		t.Fatalf("Cookie %q: cookieValue = %q, %v; net/http = %q, %v", lines, got, ok, want, wantOK)
	}
}

func TestCredentialFromCookieAllocatesNothing(t *testing.T) {
	r := &http.Request{Header: http.Header{"Cookie": {"theme=dark; keygate_session=aaa.bbb.ccc; other=1"}}}
	var c Credential
	if n := testing.AllocsPerRun(100, func() { c = CredentialFromRequest(r, "keygate_session") }); n != 0 {
		t.Fatalf("CredentialFromRequest allocates %v times per call", n)
	}
	if c.Secret != "aaa.bbb.ccc" || !c.FromCookie {
		t.Fatalf("credential %+v", c)
	}
}
