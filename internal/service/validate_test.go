package service

import (
	"testing"
	"time"

	"github.com/keygate/keygate/auth"
)

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{"30s": 30 * time.Second, "15m": 15 * time.Minute, "24h": 24 * time.Hour,
		"7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1mo": 30 * 24 * time.Hour, " 3d ": 3 * 24 * time.Hour}
	for in, want := range good {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "0d", "-1d", "1y", "1.5h", "1234567d", "forever", "10 d", "1dd"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}

func TestChangesRoundTrip(t *testing.T) {
	var c Changes
	c.Key("k1", "k2")
	c.User("u1")
	c.Team("t1")
	c.Session("s1")
	c.Spend(auth.Spent{KeyHash: "k1", UserID: "u1", TeamID: "t1", Amount: 0.25})
	c.Spend(auth.Spent{KeyHash: "k1", UserID: "u1", TeamID: "t1", Amount: 0.5})
	c.Origin = "me"
	ps := c.Encode(40) // small: forces several payloads
	if len(ps) < 2 {
		t.Fatalf("expected several payloads, got %q", ps)
	}
	var got Changes
	for _, p := range ps {
		d := DecodeChanges(p)
		if d.Origin != "me" {
			t.Fatalf("payload %q: origin=%q", p, d.Origin)
		}
		got.Key(d.Keys...)
		got.User(d.Users...)
		got.Team(d.Teams...)
		got.Session(d.Sessions...)
		for _, s := range d.Spent {
			got.Spend(s)
		}
	}
	if len(got.Keys) != 2 || len(got.Users) != 1 || len(got.Teams) != 1 || len(got.Sessions) != 1 ||
		len(got.Spent) != 1 || got.Spent[0].Amount != 0.75 {
		t.Fatalf("round trip lost something: %+v", got)
	}
	if d := DecodeChanges("p:k|u|t|NaN\np:bad"); len(d.Spent) != 0 {
		t.Fatalf("malformed spend accepted: %+v", d)
	}
}
