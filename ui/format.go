package ui

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/apperr"
)

// money formats a spend in US dollars, with cents below $1 000 and more
// precision for the fractions of a cent that LLM calls cost.
func money(v float64) string {
	switch {
	case v == 0:
		return "$0.00"
	case v < 0.01:
		return "$" + strconv.FormatFloat(v, 'f', 4, 64)
	case v < 1000:
		return "$" + strconv.FormatFloat(v, 'f', 2, 64)
	}
	return "$" + thousands(int64(math.Round(v)))
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

const dateLayout = "2006-01-02 15:04"

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(dateLayout)
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// ago says how long ago t was, coarsely ("3 h ago"); nil is "never".
func ago(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return "Never"
	}
	d := now.Sub(*t)
	switch {
	case d < time.Minute:
		return "Just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	case d < 60*24*time.Hour:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
	return day(*t)
}

// expiry describes a key's expiry and whether it has passed.
func expiry(now time.Time, t *time.Time) (string, bool) {
	if t == nil {
		return "Never", false
	}
	if !now.Before(*t) {
		return "Expired " + day(*t), true
	}
	return day(*t), false
}

func budgetOf(spend float64, max *float64) budget {
	if max == nil {
		return budget{}
	}
	b := budget{Set: true, Limit: money(*max), Level: "ok"}
	pct := 100.0
	if *max > 0 {
		pct = spend / *max * 100
	}
	switch {
	case pct >= 100:
		b.Level = "over"
	case pct >= 80:
		b.Level = "warn"
	}
	b.Percent = int(math.Min(100, math.Max(0, math.Round(pct))))
	return b
}

// parseBudget reads an optional dollar amount from a form.
func parseBudget(field, s string) (*float64, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "$"))
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return nil, apperr.InvalidParam(field, "The budget must be a number of dollars, for example 25 or 12.50.")
	}
	return &v, nil
}

// splitList reads a comma- or newline-separated list (models).
func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func joinList(list []string, empty string) string {
	if len(list) == 0 {
		return empty
	}
	return strings.Join(list, ", ")
}

func tokens(n int64) string { return thousands(n) }

// pageParam reads ?page= (1-based), tolerating junk.
func pageParam(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 100000 {
		return 1
	}
	return n
}

// pagerFor builds previous/next links keeping the other query values.
func pagerFor(path string, q url.Values, pg, size int, total int64) pager {
	pages := int((total + int64(size) - 1) / int64(size))
	if pages < 1 {
		pages = 1
	}
	p := pager{Page: pg, Pages: pages, Total: total}
	link := func(n int) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "page" {
				v[k] = vs
			}
		}
		if n > 1 {
			v.Set("page", strconv.Itoa(n))
		}
		if len(v) == 0 {
			return path
		}
		return path + "?" + v.Encode()
	}
	if pg > 1 {
		p.Prev = link(pg - 1)
	}
	if pg < pages {
		p.Next = link(pg + 1)
	}
	return p
}
