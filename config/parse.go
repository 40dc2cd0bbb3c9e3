package config

import (
	"errors"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The parsers below return problems that never include the input, so the
// caller decides whether the value may be echoed (it may not for secrets).

// parseDuration accepts Go durations ("90s", "1h30m"), day and week
// suffixes ("7d", "2w", "1d12h"), "hr" as LiteLLM users write it ("24hr"),
// and a bare integer as seconds, as LiteLLM's duration_in_seconds does.
// Months are refused: they have no fixed length.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > math.MaxInt64/int64(time.Second) {
			return 0, errors.New("duration out of range")
		}
		return time.Duration(n) * time.Second, nil
	}
	neg := false
	rest := s
	if rest[0] == '-' || rest[0] == '+' {
		neg = rest[0] == '-'
		rest = rest[1:]
	}
	var total time.Duration
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] == '.' || (rest[i] >= '0' && rest[i] <= '9')) {
			i++
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') && rest[j] != '.' {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		if num == "" || unit == "" {
			return 0, errors.New(`not a duration (want e.g. "15m", "24h", "7d")`)
		}
		var part time.Duration
		switch unit {
		case "d", "w":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, errors.New(`not a duration (want e.g. "15m", "24h", "7d")`)
			}
			day := 24 * float64(time.Hour)
			if unit == "w" {
				day *= 7
			}
			if f*day > math.MaxInt64 {
				return 0, errors.New("duration out of range")
			}
			part = time.Duration(f * day)
		case "mo", "M", "y":
			return 0, errors.New(`months and years have no fixed length; use days, e.g. "30d"`)
		default:
			if unit == "hr" || unit == "hrs" {
				unit = "h"
			}
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, errors.New(`not a duration (want e.g. "15m", "24h", "7d")`)
			}
			part = d
		}
		if total > math.MaxInt64-part {
			return 0, errors.New("duration out of range")
		}
		total += part
	}
	if neg {
		total = -total
	}
	return total, nil
}

// parseBytes accepts a plain byte count or one with a binary or decimal
// unit: "1048576", "64KiB", "1MiB", "10MB", "512k".
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] == '-' || s[i] == '+' || (s[i] >= '0' && s[i] <= '9')) {
		i++
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, errors.New(`not a size (want e.g. "1048576", "64KiB", "1MiB")`)
	}
	mult := map[string]int64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1000,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1000 * 1000,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1000 * 1000 * 1000,
	}[unit]
	if mult == 0 {
		return 0, errors.New(`unknown size unit (want B, KiB, MiB, GiB, KB, MB or GB)`)
	}
	if n > math.MaxInt64/mult || n < math.MinInt64/mult {
		return 0, errors.New("size out of range")
	}
	return n * mult, nil
}

// parseInt parses a decimal int.
func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, errors.New("number out of range")
		}
		return 0, errors.New("not a whole number")
	}
	return n, nil
}

// parseBool accepts the spellings operators use in .env files, including
// Python's "True"/"False" from LiteLLM examples.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "yes", "y", "on":
		return true, nil
	case "0", "f", "false", "no", "n", "off":
		return false, nil
	}
	return false, errors.New("not a boolean (want true or false)")
}

// splitList splits a comma-separated list, trimming blanks and dropping
// empty items, so "a, b," is [a b].
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseURL parses a URL. url.Parse's errors quote the input (and their
// inner causes quote fragments of it), so none of them is passed on.
func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	return u, nil
}

// normalizeSMTPTLS maps LiteLLM's boolean SMTP_TLS onto Keygate's modes
// and leaves anything else for Validate to judge.
func normalizeSMTPTLS(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "ssl", "implicit":
		return SMTPTLSImplicit
	case "starttls", "tls", "none":
		return s
	}
	if b, err := parseBool(s); err == nil {
		if b {
			return SMTPTLSStartTLS
		}
		return SMTPTLSNone
	}
	return s
}

// normalizeDomain lower-cases an email domain and drops a leading "@", so
// "@Example.COM" and "example.com" are the same entry.
func normalizeDomain(s string) string {
	return strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "@")
}
