package ui

import (
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

const (
	spendDays = 30
	// spendMaxRows bounds the work one page view does; beyond it the
	// page says its totals are partial.
	spendMaxRows  = 5000
	spendPageSize = 100
)

// spend shows the last 30 days: totals, a per-day chart and a per-model
// breakdown. Everyone sees their own; admins and viewers may see all.
func (u *UI) spend(c *gin.Context) error {
	p := principalOf(c)
	canAll := p.Can(rbac.PermReadAll)
	scope := "mine"
	q := service.SpendQuery{UserID: p.UserID, Size: spendPageSize}
	if canAll && c.Query("scope") == "all" {
		scope, q.UserID = "all", ""
	}
	now := u.now()
	since := sinceDays(now, spendDays)
	q.Since = &since
	var rows []store.SpendEntry
	truncated := false
	for q.Page = 1; ; q.Page++ {
		batch, total, err := u.svc.SpendLogs(ctxOf(c), p, q)
		if err != nil {
			return err
		}
		rows = append(rows, batch...)
		if len(batch) < spendPageSize || int64(len(rows)) >= total {
			break
		}
		if len(rows) >= spendMaxRows {
			truncated = true
			break
		}
	}
	title := "My spend"
	if scope == "all" {
		title = "Spend (all users)"
	}
	d := spendView(rows, since)
	d.page, d.Scope, d.CanAll, d.Truncated = u.pageFor(c, title, "/ui/spend"), scope, canAll, truncated
	if scope == "all" {
		var ids []string
		for _, r := range d.Recent {
			ids = append(ids, r.User)
		}
		emails, err := u.emails(c, p, dedupe(ids))
		if err != nil {
			return err
		}
		for i := range d.Recent {
			d.Recent[i].User = nameOr(emails, d.Recent[i].User, d.Recent[i].User)
		}
	}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.spend(w, d) })
}

// spendView aggregates entries into the page's totals, chart and tables.
func spendView(rows []store.SpendEntry, since time.Time) spendPage {
	d := spendPage{Days: spendDays}
	perDay := make([]float64, spendDays)
	type agg struct {
		requests, tokens int64
		spend            float64
	}
	models := map[string]*agg{}
	var total float64
	var toks int64
	for _, e := range rows {
		total += e.Spend
		toks += e.PromptTokens + e.CompletionTokens
		if i := int(e.CreatedAt.UTC().Sub(since) / (24 * time.Hour)); i >= 0 && i < spendDays {
			perDay[i] += e.Spend
		}
		m := e.Model
		if m == "" {
			m = "(unknown)"
		}
		if models[m] == nil {
			models[m] = &agg{}
		}
		models[m].requests++
		models[m].tokens += e.PromptTokens + e.CompletionTokens
		models[m].spend += e.Spend
	}
	d.Total, d.Requests, d.Tokens = money(total), int64(len(rows)), tokens(toks)
	d.Chart = barChart(perDay, since)
	d.PhoneChart = barChartIn(phoneChart, perDay, since)
	for name, a := range models {
		pct := 0
		if total > 0 {
			pct = int(math.Round(a.spend / total * 100))
		}
		d.Models = append(d.Models, spendModel{Model: name, Requests: a.requests, Tokens: tokens(a.tokens), Spend: money(a.spend), Percent: pct})
	}
	sort.Slice(d.Models, func(i, j int) bool {
		if d.Models[i].Percent != d.Models[j].Percent {
			return d.Models[i].Percent > d.Models[j].Percent
		}
		return d.Models[i].Model < d.Models[j].Model
	})
	recent := append([]store.SpendEntry(nil), rows...)
	sort.SliceStable(recent, func(i, j int) bool { return recent[i].CreatedAt.After(recent[j].CreatedAt) })
	if len(recent) > 10 {
		recent = recent[:10]
	}
	for _, e := range recent {
		d.Recent = append(d.Recent, spendRow{When: e.CreatedAt.UTC().Format("Jan 2 15:04"), Model: e.Model, Key: shortHash(e.KeyHash), User: e.UserID,
			Tokens: tokens(e.PromptTokens + e.CompletionTokens), Spend: money(e.Spend)})
	}
	return d
}

func shortHash(h string) string {
	if len(h) > 10 {
		return h[:10] + "…"
	}
	return h
}

// chart is a bar chart drawn as inline SVG on the server: no script, no
// library, readable by screen readers through its summary and titles.
type chart struct {
	Name              string
	Width, Height     int
	Left, Right       float64
	Top, Base         float64
	Bars              []chartBar
	YTicks            []tick
	XLabels           []tick
	Summary           string
	Empty             bool
	MaxLabel, MaxDate string
}

type chartBar struct {
	X, Y, W, H float64
	Title      string
}

type tick struct {
	X, Y  float64
	Label string
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// chartFrame is a chart's drawing area in SVG units and how often the
// date axis is labelled.
type chartFrame struct {
	name             string // "wide" or "phone": the CSS class that shows it on its screens
	width, height    int
	left, right      float64
	top, base        float64
	labelEvery, tail int // a date label every labelEvery days, none in the last tail days but today's
}

var (
	// wideChart fills a laptop's card; its 11-unit labels are drawn at
	// about 11 px there.
	wideChart = chartFrame{name: "wide", width: 720, height: 220, left: 56, right: 712, top: 12, base: 190, labelEvery: 7, tail: 3}
	// phoneChart is drawn instead on narrow screens (style.css): the SVG
	// scales to the card, so a narrower frame keeps its labels readable
	// (~12 px at 390 px) where the wide one's shrink to 5 px.
	phoneChart = chartFrame{name: "phone", width: 340, height: 200, left: 52, right: 322, top: 12, base: 172, labelEvery: 10, tail: 5}
)

func barChart(values []float64, start time.Time) chart { return barChartIn(wideChart, values, start) }

func barChartIn(f chartFrame, values []float64, start time.Time) chart {
	ch := chart{Name: f.name, Width: f.width, Height: f.height, Left: f.left, Right: f.right, Top: f.top, Base: f.base}
	peak, peakDay := 0.0, 0
	var sum float64
	for i, v := range values {
		sum += v
		if v > peak {
			peak, peakDay = v, i
		}
	}
	ch.Empty = peak == 0
	top := niceCeil(peak)
	plotW, plotH := ch.Right-ch.Left, ch.Base-ch.Top
	slot := plotW / float64(len(values))
	for i, v := range values {
		h := 0.0
		if top > 0 {
			h = v / top * plotH
		}
		if v > 0 && h < 1.5 {
			h = 1.5 // a non-zero day is always visible
		}
		date := start.AddDate(0, 0, i)
		ch.Bars = append(ch.Bars, chartBar{X: round1(ch.Left + float64(i)*slot + slot*0.15), Y: round1(ch.Base - h),
			W: round1(slot * 0.7), H: round1(h), Title: day(date) + ": " + money(v)})
		// A label every week and one for today, never two touching.
		if (i%f.labelEvery == 0 && i < len(values)-f.tail) || i == len(values)-1 {
			ch.XLabels = append(ch.XLabels, tick{X: round1(ch.Left + float64(i)*slot + slot/2), Y: ch.Base + 18, Label: date.Format("Jan 2")})
		}
	}
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		ch.YTicks = append(ch.YTicks, tick{X: ch.Left - 8, Y: round1(ch.Base - plotH*float64(i)/4), Label: money(v)})
	}
	ch.Summary = "Spend per day over the last " + strconv.Itoa(len(values)) + " days, " + money(sum) + " in total"
	if !ch.Empty {
		ch.MaxLabel, ch.MaxDate = money(peak), day(start.AddDate(0, 0, peakDay))
		ch.Summary += "; the highest day was " + ch.MaxDate + " with " + ch.MaxLabel
	}
	ch.Summary += "."
	return ch
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, so axis labels
// are round numbers.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	exp := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*exp {
			return m * exp
		}
	}
	return 10 * exp
}
