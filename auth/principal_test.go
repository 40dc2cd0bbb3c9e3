package auth

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"
)

func TestCredentialFromRequest(t *testing.T) {
	cases := []struct {
		hdr     map[string]string
		cookie  string
		want    string
		cookie2 bool
	}{
		{map[string]string{"Authorization": "Bearer sk-abc"}, "", "sk-abc", false},
		{map[string]string{"Authorization": "bearer   sk-abc  "}, "", "sk-abc", false},
		{map[string]string{"Authorization": "sk-bare"}, "", "sk-bare", false},
		{map[string]string{"X-Litellm-Api-Key": "sk-l"}, "", "sk-l", false},
		{map[string]string{"X-Api-Key": "sk-x"}, "", "sk-x", false},
		{map[string]string{"Api-Key": "sk-a"}, "", "sk-a", false},
		{map[string]string{"Authorization": "Bearer sk-h", "X-Api-Key": "sk-x"}, "", "sk-h", false},
		{map[string]string{}, "jwt.from.cookie", "jwt.from.cookie", true},
		{map[string]string{"Authorization": "Bearer sk-h"}, "jwt.from.cookie", "sk-h", false},
		{map[string]string{"Authorization": "Bearer " + strings.Repeat("x", maxCredentialLen+1)}, "", "", false},
		{map[string]string{"Authorization": "Bearer "}, "", "", false},
	}
	for i, c := range cases {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		for k, v := range c.hdr {
			r.Header.Set(k, v)
		}
		if c.cookie != "" {
			r.AddCookie(&http.Cookie{Name: "s", Value: c.cookie})
		}
		got := CredentialFromRequest(r, "s")
		if got.Secret != c.want || got.FromCookie != c.cookie2 {
			t.Errorf("case %d: got %+v, want %q (cookie %v)", i, got, c.want, c.cookie2)
		}
	}
}

// FuzzCredentialExtraction: any header or cookie value yields either no
// credential or one that is bounded, trimmed and never panics the chain.
func FuzzCredentialExtraction(f *testing.F) {
	for _, s := range []string{"Bearer sk-kg-abc", "bearer", "Bearer ", "sk-x", "Basic Zm9v", "\x00\xff", "Bearer a.b.c"} {
		f.Add(s, "cookie")
	}
	mk := NewMasterKey(sha256.Sum256([]byte("sk-master")))
	f.Fuzz(func(t *testing.T, header, cookie string) {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{header}
		r.Header["Cookie"] = []string{"s=" + cookie}
		c := CredentialFromRequest(r, "s")
		if len(c.Secret) > maxCredentialLen {
			t.Fatalf("credential longer than the cap: %d", len(c.Secret))
		}
		if c.Secret != strings.TrimSpace(c.Secret) {
			t.Fatalf("untrimmed credential %q", c.Secret)
		}
		p, err := Chain{mk}.Authenticate(context.Background(), c)
		if err == nil && c.Secret != "sk-master" {
			t.Fatalf("accepted %q as %+v", c.Secret, p)
		}
	})
}

func TestMasterKeyConstantTimeAndCookieRefusal(t *testing.T) {
	mk := NewMasterKey(sha256.Sum256([]byte("sk-master")))
	if _, err := mk.Authenticate(context.Background(), Credential{Secret: "sk-master"}); err != nil {
		t.Fatal(err)
	}
	if _, err := mk.Authenticate(context.Background(), Credential{Secret: "sk-master", FromCookie: true}); err != ErrNotMine {
		t.Fatal("the master key is never a cookie")
	}
	if _, err := (Chain{mk}).Authenticate(context.Background(), Credential{Secret: "sk-other"}); err != ErrInvalid {
		t.Fatalf("unknown credential: %v", err)
	}
	var zero [sha256.Size]byte
	if _, err := NewMasterKey(zero).Authenticate(context.Background(), Credential{Secret: ""}); err != ErrNotMine {
		t.Fatal("an unset master key matches nothing")
	}
}

func TestCredentialDigestMatchesAPIKeyHash(t *testing.T) {
	c := Credential{Secret: "sk-kg-someKeyValue"}
	want := sha256.Sum256([]byte(c.Secret))
	if c.SHA256() != want {
		t.Fatal("digest of an unchained credential")
	}
	c.sum, c.hasSum = want, true
	if c.SHA256() != want {
		t.Fatal("cached digest")
	}
}
