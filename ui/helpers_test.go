package ui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/websession"
)

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "/ui/",
		"/ui/spend":              "/ui/spend",
		"/ui/users?q=a&page=2":   "/ui/users?q=a&page=2",
		"//evil.example/ui/":     "/ui/",
		"https://evil.example/":  "/ui/",
		"/ui/\\evil":             "/ui/",
		"/api/anything":          "/ui/",
		"/ui/\r\nSet-Cookie: x":  "/ui/",
		"javascript:alert(1)":    "/ui/",
		"/ui//evil.example/path": "/ui/",
		"/ui/%2F%2Fevil.example": "/ui/",
		"/ui/..%2F..%2F/evil":    "/ui/",
		"/ui/\t/evil.example":    "/ui/",
	} {
		require.Equal(t, want, safeNext(in), in)
	}
}

func TestMoneyAndBudget(t *testing.T) {
	require.Equal(t, "$0.00", money(0))
	require.Equal(t, "$0.0042", money(0.0042))
	require.Equal(t, "$12.50", money(12.5))
	require.Equal(t, "$12,346", money(12345.6))
	require.Equal(t, budget{}, budgetOf(5, nil))
	require.Equal(t, budget{Set: true, Limit: "$10.00", Percent: 50, Level: "ok"}, budgetOf(5, ptr(10.0)))
	require.Equal(t, "warn", budgetOf(8.5, ptr(10.0)).Level)
	over := budgetOf(15, ptr(10.0))
	require.Equal(t, "over", over.Level)
	require.Equal(t, 100, over.Percent)
	require.Equal(t, "over", budgetOf(0, ptr(0.0)).Level)

	b, err := parseBudget("max_budget", " $12.5 ")
	require.NoError(t, err)
	require.Equal(t, 12.5, *b)
	b, err = parseBudget("max_budget", "")
	require.NoError(t, err)
	require.Nil(t, b)
	for _, bad := range []string{"-1", "NaN", "Inf", "ten"} {
		_, err = parseBudget("max_budget", bad)
		require.Error(t, err, bad)
	}
	require.Equal(t, []string{"gpt-4o", "claude"}, splitList(" gpt-4o, ,claude\n"))
}

func TestBarChart(t *testing.T) {
	start := time.Date(2026, 10, 29, 0, 0, 0, 0, time.UTC)
	values := make([]float64, 30)
	values[3], values[29] = 7.3, 0.001
	ch := barChart(values, start)
	require.Len(t, ch.Bars, 30)
	require.False(t, ch.Empty)
	require.Equal(t, "$10.00", ch.YTicks[4].Label, "the axis tops out at a round number")
	require.Equal(t, ch.Base, ch.Bars[0].Y, "an empty day has no bar")
	require.Greater(t, ch.Bars[29].H, 1.0, "a tiny day is still visible")
	require.Contains(t, ch.Summary, "2026-11-01 with $7.30")
	var labels []string
	for _, x := range ch.XLabels {
		labels = append(labels, x.Label)
	}
	require.Equal(t, []string{"Oct 29", "Nov 5", "Nov 12", "Nov 19", "Nov 27"}, labels)
	require.True(t, barChart(make([]float64, 30), start).Empty)
	for v, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.2: 2, 7.3: 10, 12: 20, 499: 500} {
		require.InDelta(t, want, niceCeil(v), 1e-9, "%v", v)
	}
}

func TestPager(t *testing.T) {
	p := pagerFor("/ui/users", url.Values{"q": {"a b"}, "page": {"2"}}, 2, 25, 60)
	require.Equal(t, pager{Page: 2, Pages: 3, Total: 60, Prev: "/ui/users?q=a+b", Next: "/ui/users?page=3&q=a+b"}, p)
	require.Equal(t, pager{Page: 1, Pages: 1}, pagerFor("/ui/x", nil, 1, 25, 0))
	require.Equal(t, 1, pageParam("-3"))
	require.Equal(t, 1, pageParam("x"))
	require.Equal(t, 4, pageParam("4"))
}

func testUI(t *testing.T) *UI {
	t.Helper()
	tm, err := parseTemplates()
	require.NoError(t, err)
	web, err := websession.New(websession.Options{Key: []byte("k")})
	require.NoError(t, err)
	return &UI{tmpl: tm, now: time.Now, opts: Options{Web: web}}
}

func ginCtx(r *http.Request) (*gin.Context, *httptest.ResponseRecorder) {
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = r
	return c, w
}

// A flash survives one redirect, is signed (a forged one is ignored) and
// expires.
func TestFlashCookie(t *testing.T) {
	u := testUI(t)
	c, w := ginCtx(httptest.NewRequest(http.MethodPost, "/ui/x", nil))
	u.setFlash(c, "ok", "Key deleted.")
	ck := w.Result().Cookies()[0]
	require.Equal(t, flashCookie, ck.Name)
	require.True(t, ck.HttpOnly)

	read := func(value string) *flash {
		r := httptest.NewRequest(http.MethodGet, "/ui/", nil)
		r.AddCookie(&http.Cookie{Name: flashCookie, Value: value})
		c, _ := ginCtx(r)
		return u.takeFlash(c)
	}
	require.Equal(t, &flash{Kind: "ok", Message: "Key deleted."}, read(ck.Value))
	payload, sig, _ := strings.Cut(ck.Value, ".")
	require.Nil(t, read(payload+"."+strings.Repeat("A", len(sig))))
	require.Nil(t, read("garbage"))
	u.now = func() time.Time { return time.Now().Add(2 * flashTTL) }
	require.Nil(t, read(ck.Value))
}
