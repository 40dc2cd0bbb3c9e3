package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// layoutProblem is one thing a user would see broken, as the page's own
// script measured it.
type layoutProblem struct {
	What string `json:"what"`
	Sel  string `json:"sel"`
	Text string `json:"text"`
}

// layoutProbe measures, in the page, what the layout tests check: every
// main menu item drawn inside the viewport and on top (not scrolled away
// or clipped), every badge as wide as its text, and — when wide is false,
// i.e. on a phone — no element or piece of text running past the
// viewport's right edge or a clipping card. It returns the problems found.
const layoutProbe = `(function(){
  var out = [], W = window.innerWidth;
  function sel(e){ var s = e.tagName.toLowerCase(); if (e.id) s += '#' + e.id; if (e.className && typeof e.className === 'string') s += '.' + e.className.trim().split(/\s+/).join('.'); return s; }
  function add(what, e, text){ out.push({what: what, sel: sel(e), text: (text || e.textContent || '').trim().slice(0, 80)}); }
  function shown(e){ var cs = getComputedStyle(e); return cs.display !== 'none' && cs.visibility !== 'hidden' && !e.closest('.sr-only, [hidden], .skip, details:not([open]) > :not(summary)'); }
  window.scrollTo(0, 0);
  document.querySelectorAll('nav.nav a').forEach(function(a){
    var r = a.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) { add('menu item has no size', a); return; }
    if (r.left < -0.5 || r.right > W + 0.5 || r.top < -0.5 || r.bottom > window.innerHeight) { add('menu item outside the viewport ' + JSON.stringify([r.left, r.right, r.top, r.bottom]), a); return; }
    var hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    if (!hit || !a.contains(hit)) add('menu item hidden under ' + (hit ? sel(hit) : 'nothing'), a);
  });
  document.querySelectorAll('main .badge, header .badge').forEach(function(b){
    if (!shown(b)) return;
    var rg = document.createRange(); rg.selectNodeContents(b);
    var tr = rg.getBoundingClientRect(), br = b.getBoundingClientRect();
    if (b.getClientRects().length !== 1) add('badge broken over lines', b);
    else if (br.width + 0.5 < tr.width || b.scrollWidth > b.clientWidth + 1) add('badge narrower than its text (' + br.width.toFixed(1) + ' < ' + tr.width.toFixed(1) + ')', b);
    else if (br.height + 0.5 < tr.height) add('badge lower than its text', b);
  });
  if (%t) return out;
  if (document.documentElement.scrollWidth > W + 0.5) add('page wider than the viewport (' + document.documentElement.scrollWidth + ' > ' + W + ')', document.documentElement, ' ');
  // Every text run must be drawn inside the viewport and inside the card
  // that holds it (cards clip what overflows them).
  var walk = document.createTreeWalker(document.querySelector('main'), NodeFilter.SHOW_TEXT);
  for (var n = walk.nextNode(); n; n = walk.nextNode()) {
    if (!n.textContent.trim()) continue;
    var el = n.parentElement;
    if (!shown(el) || el.closest('svg, select, option, input, textarea')) continue;
    // Text cut with an ellipsis on purpose is fine when the full value is
    // in the title.
    var cut = el.closest('[title]');
    var rg = document.createRange(); rg.selectNodeContents(n);
    var rs = rg.getClientRects();
    var box = el.closest('.card, .stat, .auth-card');
    var bx = box ? box.getBoundingClientRect() : {left: 0, right: W};
    for (var i = 0; i < rs.length; i++) {
      var r = rs[i];
      if (r.width < 0.5) continue;
      if (r.right > W + 0.5 || r.left < -0.5) { add('text runs off the screen (' + r.left.toFixed(0) + '..' + r.right.toFixed(0) + ' of ' + W + ')', el, n.textContent); break; }
      if ((r.right > bx.right + 0.5 || r.left < bx.left - 0.5) && !(cut && getComputedStyle(el).textOverflow === 'ellipsis')) { add('text runs off its card', el, n.textContent); break; }
    }
  }
  // The chart's labels must be readable: at least 10 px tall as drawn.
  document.querySelectorAll('svg.chart').forEach(function(svg){
    if (!shown(svg)) return;
    var scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    svg.querySelectorAll('text.axis').forEach(function(t){
      var px = parseFloat(getComputedStyle(t).fontSize) * scale;
      if (px < 10) add('chart label drawn at ' + px.toFixed(1) + ' px', t);
      var tr = t.getBoundingClientRect(), sr = svg.getBoundingClientRect();
      if (tr.left < sr.left - 0.5 || tr.right > sr.right + 0.5) add('chart label cut at the edge', t);
    });
  });
  return out;
})()`

// TestBrowserLayout drives every signed-in page as an admin at 390 px (a
// phone) and 1366 px (a laptop) with data that stresses the layout —
// blocked users and keys, long ids, e-mails and model names — and checks
// what a person would see: every menu item on screen, badges not squashed,
// nothing running off the page or out of its card, a readable chart axis,
// and on a laptop a Spend table whose columns all show.
func TestBrowserLayout(t *testing.T) {
	t.Parallel()
	s := startUIStack(t)
	s.seedLayout()
	admin := s.root
	s.signIn(admin, uiAdminEmail, uiAdminPassword, "")
	pages := []struct{ path, name string }{
		{"/ui/", "my-keys"}, {"/ui/keys", "all-keys"}, {"/ui/users", "users"}, {"/ui/teams", "teams"},
		{"/ui/invitations", "invitations"}, {"/ui/audit", "audit"}, {"/ui/spend?scope=all", "spend"}, {"/ui/scim", "scim"},
		{"/ui/account/security", "security"}, {"/ui/password", "password"},
	}
	check := func(width int, wide bool) {
		for _, p := range pages {
			s.do(admin, p.name, chromedp.Navigate(s.url(p.path)), chromedp.WaitVisible(chromedp.CSS("main h1")))
			s.shot(admin, fmt.Sprintf("layout-%d-%s", width, p.name))
			probs, err := chromedp.Run(admin, chromedp.Evaluate[[]layoutProblem](fmt.Sprintf(layoutProbe, wide)))
			require.NoError(t, err)
			for _, pr := range probs {
				t.Errorf("%d px %s: %s: %s %q", width, p.path, pr.What, pr.Sel, pr.Text)
			}
		}
	}
	// A phone.
	s.do(admin, "phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	check(390, false)
	// The full value of an id shortened on screen is still there to
	// read and select.
	s.do(admin, "users", chromedp.Navigate(s.url("/ui/users")), chromedp.WaitVisible(chromedp.CSS("main h1")))
	require.Contains(t, s.text(admin, "main"), layoutLongUserID)

	// A laptop.
	s.do(admin, "laptop", chromedp.EmulateViewport(1366, 768))
	check(1366, true)
	// Every column of the Spend tables is drawn inside its card.
	s.do(admin, "spend", chromedp.Navigate(s.url("/ui/spend?scope=all")), chromedp.WaitVisible(chromedp.ID("models-table")))
	clipped, err := chromedp.Run(admin, chromedp.Evaluate[[]string](`(function(){
		  var out = [];
		  document.querySelectorAll('#models-table th, #models-table td, #recent-table th, #recent-table td').forEach(function(c){
		    var card = c.closest('.card').getBoundingClientRect(), r = c.getBoundingClientRect();
		    // Not even behind a sideways scroll: a laptop has room for it.
		    if (r.right > card.right + 0.5) out.push(c.textContent.trim().slice(0, 60));
		  });
		  return out;
		})()`))
	require.NoError(t, err)
	require.Empty(t, clipped, "Spend table cells cut off at the card's edge")
	s.do(admin, "desktop", chromedp.EmulateReset())
}

// layoutLongUserID is an id as an identity provider might send it (SCIM
// externalId style): long and without a break opportunity.
const layoutLongUserID = "okta-00u1a2b3c4d5e6f7g8h9i0j1k2l3m4n5o6p7q8r9s0t1u2v3w4x5y6z7"

// seedLayout creates the data that used to break the layout: a blocked
// user with a long e-mail and id, a blocked key with a long name, a team,
// an invitation and spend on long model names.
func (s *uiStack) seedLayout() {
	s.t.Helper()
	ctx := context.Background()
	svc := s.app.Service()
	adminP := auth.Principal{Method: auth.MethodMasterKey, Role: rbac.RoleProxyAdmin}
	id, email, role := layoutLongUserID, "maximilian.alexander.von-longname@research.subsidiary.example.com", string(rbac.RoleInternalUser)
	_, err := svc.CreateUser(ctx, adminP, service.NewUser{UserID: &id, UserEmail: &email, UserRole: &role, AutoCreateKey: new(bool)})
	require.NoError(s.t, err)
	blocked := true
	_, err = svc.UpdateUser(ctx, adminP, service.UserUpdate{UserID: &id, Disabled: &blocked})
	require.NoError(s.t, err)
	invitee, invRole := "newcomer@example.com", string(rbac.RoleInternalUser)
	_, err = svc.CreateUser(ctx, adminP, service.NewUser{UserEmail: &invitee, UserRole: &invRole, AutoCreateKey: new(bool),
		SendInviteEmail: &blocked})
	if err != nil {
		s.t.Logf("invitation not created (%v); the Invitations page stays empty", err)
	}
	team := "Research and Development Platform Engineering"
	_, err = svc.CreateTeam(ctx, adminP, service.NewTeam{TeamAlias: &team, Models: []string{"gpt-4o"}, Blocked: &blocked})
	require.NoError(s.t, err)

	owner := uiAdminEmail
	models := []string{"bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0", "azure/gpt-4o-2024-08-06-global-standard-deployment", "gpt-4o-mini"}
	var hashes []string
	for _, alias := range []string{"nightly-evaluation-pipeline-for-the-research-cluster", "notebook"} {
		a, b := alias, 100.0
		k, err := svc.GenerateKey(ctx, adminP, service.KeyRequest{UserID: &owner, KeyAlias: &a, MaxBudget: &b, Models: models[:2], Blocked: &blocked})
		require.NoError(s.t, err)
		hashes = append(hashes, k.Key.Hash)
	}
	now := time.Now().UTC()
	for d := 0; d < 30; d++ {
		for j := 0; j < 2; j++ {
			err := s.store.RecordSpend(ctx, store.SpendEntry{RequestID: fmt.Sprintf("layout-%d-%d", d, j), KeyHash: hashes[j],
				UserID: owner, Model: models[(d+j)%3], PromptTokens: int64(1000 + d*40), CompletionTokens: 400,
				Spend: 0.5 + float64(d%9)*1.25, CreatedAt: now.AddDate(0, 0, -d).Add(-time.Duration(j) * time.Hour)})
			require.NoError(s.t, err)
		}
	}
}
