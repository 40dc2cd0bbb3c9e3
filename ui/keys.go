package ui

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/access"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

const keysPerPage = 50

// defaultExpiry is preselected: keys that never expire are the ones that
// leak for years.
const defaultExpiry = "90d"

func expiryOptions(selected string) []option {
	opts := []option{{Value: "7d", Label: "7 days"}, {Value: "30d", Label: "30 days"}, {Value: "90d", Label: "90 days"},
		{Value: "365d", Label: "1 year"}, {Value: "never", Label: "Never"}}
	for i := range opts {
		opts[i].Selected = opts[i].Value == selected
	}
	return opts
}

func (u *UI) keyRows(c *gin.Context, keys []store.Key, owners map[string]string, back string) ([]keyRow, error) {
	p := principalOf(c)
	hashes := make([]string, 0, len(keys))
	for _, k := range keys {
		hashes = append(hashes, k.Hash)
	}
	standings, err := u.svc.KeyStandings(ctxOf(c), p, hashes)
	if err != nil {
		return nil, err
	}
	csrf := u.opts.Web.CSRFToken(p.SessionID)
	now := u.now()
	rows := make([]keyRow, 0, len(keys))
	for _, k := range keys {
		exp, expired := expiry(now, k.ExpiresAt)
		owner := k.UserID
		if e := owners[k.UserID]; e != "" {
			owner = e
		}
		if owner == "" {
			owner = "— (service key)"
		}
		mine := k.UserID != "" && k.UserID == p.UserID
		st, found := standings[k.Hash]
		models, limits, refusal := standingView(st, found, mine, k.Models)
		row := keyRow{Hash: k.Hash, Alias: k.Alias, Name: k.KeyName, Owner: owner, Team: k.TeamID,
			Models: models, Limits: limits, Refusal: refusal, Created: day(k.CreatedAt), Expires: exp, Expired: expired,
			LastUsed: ago(now, k.LastActive), Spend: money(k.Spend), Budget: budgetOf(k.Spend, k.MaxBudget), Blocked: k.Blocked,
			CanEdit: mayEditKey(p, k)}
		if p.Can(rbac.PermKeyWriteAny) || (p.Can(rbac.PermKeyWriteOwn) && mine) {
			step := keyDeleteStep(k, back)
			step.CSRF = csrf
			row.Delete = &step
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// mayEditKey: the key's owner and proxy admins change and regenerate a
// key (a new value acts as its owner); the service decides again.
func mayEditKey(p auth.Principal, k store.Key) bool {
	return p.Can(rbac.PermKeyWriteAny) || (p.Can(rbac.PermKeyWriteOwn) && k.UserID != "" && k.UserID == p.UserID)
}

func keyLabel(k store.Key) string {
	if k.Alias != "" {
		return k.Alias
	}
	return k.KeyName
}

func keyDeleteStep(k store.Key, back string) confirmStep {
	return confirmStep{ID: domID("delete-key-", k.Hash), Action: "/ui/keys/delete", Button: "Delete", Danger: true,
		Fields: fields("key", k.Hash, "return", back), Title: "Delete this key?", Before: "Delete ", Subject: keyLabel(k),
		After: "? Applications using it stop working at once.", Yes: "Yes, delete this key"}
}

// ownLimits describes the caller's own models and budget for the key
// form, so its hints say what "empty" means ("" budget: no budget).
func (u *UI) ownLimits(c *gin.Context) (models, budget string) {
	p := principalOf(c)
	models = "All models you may use"
	if p.UserID == "" {
		return models, budget
	}
	d, err := u.svc.GetUser(ctxOf(c), p, p.UserID)
	if err != nil {
		u.log.Debug("ui: own limits", "err", err)
		return models, budget
	}
	if len(d.User.Models) > 0 && !access.Unrestricted(d.User.Models) {
		models = "All you may use: " + strings.Join(d.User.Models, ", ")
	}
	if d.User.MaxBudget != nil {
		budget = "Empty: no limit of its own; your budget (" + money(*d.User.MaxBudget) + ") still applies."
	}
	return models, budget
}

// myKeysData lists the caller's own keys (admins too: their own, not all).
func (u *UI) myKeysData(c *gin.Context) (keysPage, error) {
	p := principalOf(c)
	pg := pageParam(c.Query("page"))
	srt := keySorts().choose(c.Request.URL.Query())
	keys, total, err := u.svc.ListKeys(ctxOf(c), p, service.KeyListInput{UserID: p.UserID, Page: pg, Size: keysPerPage, Order: srt.order})
	if err != nil {
		return keysPage{}, err
	}
	rows, err := u.keyRows(c, keys, nil, "/ui/")
	if err != nil {
		return keysPage{}, err
	}
	d := keysPage{page: u.pageFor(c, "My keys", "/ui/"), Heading: "My keys",
		Intro: "API keys let your applications call the LLM proxy as you. Keep them secret.",
		Keys:  rows, Pager: pagerFor("/ui/", c.Request.URL.Query(), pg, keysPerPage, total),
		Sort: keySorts().columns("/ui/", c.Request.URL.Query(), srt),
		Form: keyForm{Duration: defaultExpiry}, Expiries: expiryOptions(defaultExpiry)}
	if p.Can(rbac.PermKeyWriteOwn) {
		d.ModelsHint, d.BudgetHint = u.ownLimits(c)
	}
	if p.Can(rbac.PermUserWrite) && !u.gettingStartedDismissed(c, p.UserID) {
		d.GettingStarted = &gettingStarted{LLMBaseURL: u.opts.LLMBaseURL}
	}
	return d, nil
}

func (u *UI) myKeys(c *gin.Context) error {
	d, err := u.myKeysData(c)
	if err != nil {
		return err
	}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.keys(w, d) })
}

// createKey answers with the new key itself (no redirect: the key must
// never be in a URL or a cookie), marked no-store.
func (u *UI) createKey(c *gin.Context) error {
	p := principalOf(c)
	form := keyForm{Alias: strings.TrimSpace(c.PostForm("alias")), Duration: c.PostForm("duration"),
		Models: c.PostForm("models"), Budget: c.PostForm("max_budget")}
	req := service.KeyRequest{Models: splitList(form.Models)}
	owner := p.UserID
	req.UserID = &owner
	if form.Alias != "" {
		req.KeyAlias = &form.Alias
	}
	if form.Duration != "" && form.Duration != "never" {
		req.Duration = &form.Duration
	}
	ik, err := func() (service.IssuedKey, error) {
		b, err := parseBudget("max_budget", form.Budget)
		if err != nil {
			return service.IssuedKey{}, err
		}
		req.MaxBudget = b
		return u.svc.GenerateKey(ctxOf(c), p, req)
	}()
	if err != nil {
		// Every mistake re-shows the form with what was typed: a limit
		// the key may not exceed is a 403 from the service, but for the
		// person filling in the form it is a wrong value, not a wrong page.
		status, msg, ok := publicError(err)
		if !ok {
			return err
		}
		if plain, isScope := scopeMessage(err, true); isScope {
			msg = plain
		}
		d, lerr := u.myKeysData(c)
		if lerr != nil {
			return lerr
		}
		if status == http.StatusConflict && form.Alias != "" {
			// Names are unique per owner: say so in the user's words,
			// not the API's (which names key_alias).
			msg = "You already have a key named “" + form.Alias + "”. Choose another name, or delete the old key first."
		}
		d.Form, d.FormError, d.Expiries = form, msg, expiryOptions(form.Duration)
		return u.write(c, status, func(w io.Writer) error { return u.tmpl.keys(w, d) })
	}
	noStore(c)
	exp, _ := expiry(u.now(), ik.Key.ExpiresAt)
	d := keyCreatedPage{page: u.pageFor(c, "Key created", "/ui/"), Key: ik.Raw, Name: ik.Key.KeyName, Alias: ik.Key.Alias,
		Expires: exp, Models: joinList(ik.Key.Models, "All models you may use"), Usage: usageFor(u.opts.LLMBaseURL, ik.Raw, ik.Key.Models)}
	if len(ik.Key.Models) == 0 {
		if hint, _ := u.ownLimits(c); hint != "" {
			d.Models = hint
		}
	}
	if ik.Key.MaxBudget != nil {
		d.Budget = money(*ik.Key.MaxBudget)
	}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.keyCreated(w, d) })
}

func (u *UI) deleteKey(c *gin.Context) error {
	p := principalOf(c)
	ref, back := c.PostForm("key"), safeNext(c.PostForm("return"))
	if ref == "" {
		return u.redirectError(c, back, apperr.InvalidParam("key", "No key was named."))
	}
	k, err := u.svc.KeyInfo(ctxOf(c), p, ref)
	if err != nil {
		return u.redirectError(c, back, err)
	}
	if ok, err := u.confirmed(c, keyDeleteStep(k, back), back); !ok {
		return err
	}
	if err := u.svc.DeleteKeys(ctxOf(c), p, []string{k.Hash}, nil); err != nil {
		return u.redirectError(c, back, err)
	}
	return u.redirect(c, back, "Key “"+keyLabel(k)+"” was deleted. Applications using it stop working now.")
}

// allKeys lists every key (admins and admin viewers), newest first,
// filterable by owner (e-mail, as the table shows it, or user id).
func (u *UI) allKeys(c *gin.Context) error {
	p := principalOf(c)
	if !p.Can(rbac.PermReadAll) {
		return apperr.Forbidden("Only admins can see all keys.")
	}
	pg := pageParam(c.Query("page"))
	filter := strings.TrimSpace(c.Query("user"))
	srt := keySorts().choose(c.Request.URL.Query())
	keys, total, err := u.svc.ListKeys(ctxOf(c), p, service.KeyListInput{Owner: filter, Page: pg, Size: keysPerPage, Order: srt.order})
	if err != nil {
		return err
	}
	owners, err := u.emails(c, p, ownersOf(keys))
	if err != nil {
		return err
	}
	back := "/ui/keys"
	if q := c.Request.URL.RawQuery; q != "" {
		back += "?" + q
	}
	rows, err := u.keyRows(c, keys, owners, back)
	if err != nil {
		return err
	}
	d := keysPage{page: u.pageFor(c, "All keys", "/ui/keys"), Heading: "All keys", All: true, Filter: filter,
		Intro: "Every API key on this Keygate, newest first.", Keys: rows,
		Sort:  keySorts().columns("/ui/keys", c.Request.URL.Query(), srt),
		Pager: pagerFor("/ui/keys", c.Request.URL.Query(), pg, keysPerPage, total)}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.keys(w, d) })
}

func ownersOf(keys []store.Key) []string {
	seen := map[string]bool{}
	var ids []string
	for _, k := range keys {
		if k.UserID != "" && !seen[k.UserID] {
			seen[k.UserID] = true
			ids = append(ids, k.UserID)
		}
	}
	return ids
}

// emails maps user ids to e-mail addresses, in one listing.
func (u *UI) emails(c *gin.Context, p auth.Principal, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if len(ids) == 0 || !p.Can(rbac.PermReadAll) {
		return out, nil
	}
	users, _, err := u.svc.ListUsers(ctxOf(c), p, service.UserListInput{UserIDs: ids, PageSize: 100})
	if err != nil {
		return nil, err
	}
	for _, it := range users {
		out[it.User.ID] = it.User.Email
	}
	return out, nil
}

// sinceDays is the start of the day n-1 days before now (UTC).
func sinceDays(now time.Time, n int) time.Time {
	d := now.UTC().Truncate(24 * time.Hour)
	return d.AddDate(0, 0, -(n - 1))
}
