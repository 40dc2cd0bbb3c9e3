package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "15m", want: 15 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "24h", want: 24 * time.Hour},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "30d", want: 30 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "2w", want: 14 * 24 * time.Hour},
		{in: "0.5d", want: 12 * time.Hour},
		{in: "24hr", want: 24 * time.Hour},
		{in: "3600", want: time.Hour},
		{in: "0", want: 0},
		{in: " 10s ", want: 10 * time.Second},
		{in: "-5m", want: -5 * time.Minute},
		{in: "1mo", wantErr: "no fixed length"},
		{in: "1y", wantErr: "no fixed length"},
		{in: "abc", wantErr: "not a duration"},
		{in: "5", want: 5 * time.Second},
		{in: "5x", wantErr: "not a duration"},
		{in: "d", wantErr: "not a duration"},
		{in: "", wantErr: "empty"},
		{in: "999999999999d", wantErr: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "1048576", want: 1 << 20},
		{in: "64KiB", want: 64 << 10},
		{in: "1MiB", want: 1 << 20},
		{in: "1mib", want: 1 << 20},
		{in: "512k", want: 512 << 10},
		{in: "10MB", want: 10_000_000},
		{in: "2 GiB", want: 2 << 30},
		{in: "1TiB", wantErr: true},
		{in: "MiB", wantErr: true},
		{in: "1.5MiB", wantErr: true},
		{in: "99999999999999GiB", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseBytes(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseBoolAndLists(t *testing.T) {
	for _, in := range []string{"1", "true", "True", "YES", "on"} {
		b, err := parseBool(in)
		require.NoError(t, err, in)
		require.True(t, b, in)
	}
	for _, in := range []string{"0", "false", "False", "no", "off"} {
		b, err := parseBool(in)
		require.NoError(t, err, in)
		require.False(t, b, in)
	}
	_, err := parseBool("maybe")
	require.Error(t, err)

	require.Equal(t, []string{"a", "b"}, splitList(" a, ,b,"))
	require.Nil(t, splitList(" , "))

	for in, want := range map[string]string{
		"True": SMTPTLSStartTLS, "false": SMTPTLSNone, "STARTTLS": SMTPTLSStartTLS,
		"ssl": SMTPTLSImplicit, "tls": SMTPTLSImplicit, "none": SMTPTLSNone, "bogus": "bogus",
	} {
		require.Equal(t, want, normalizeSMTPTLS(in), in)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 10 * time.Second: "10s", 15 * time.Minute: "15m", 90 * time.Minute: "1h30m",
		24 * time.Hour: "1d", 30 * 24 * time.Hour: "30d", 36 * time.Hour: "36h", 2 * time.Hour: "2h",
		time.Hour + time.Second: "1h0m1s", 1500 * time.Millisecond: "1.5s",
	} {
		require.Equal(t, want, formatDuration(d))
		back, err := parseDuration(want)
		require.NoError(t, err)
		require.Equal(t, d, back, "round trip of %s", want)
	}
}
