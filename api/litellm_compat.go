package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// Routes LiteLLM's dashboard and clients call that have no other home
// here; each answers in LiteLLM's shape.

// listAll bounds the admin views that LiteLLM answers unpaged; pageMax is
// the service's largest page.
const (
	listAll = 1000
	pageMax = 100
)

// allKeys lists the keys p may see, page by page, up to listAll.
func (s *Server) allKeys(c *gin.Context) ([]store.Key, error) {
	var out []store.Key
	for page := 1; len(out) < listAll; page++ {
		keys, total, err := s.opts.Keys.ListKeys(ctxOf(c), PrincipalOf(c), service.KeyListInput{Page: page, Size: pageMax})
		if err != nil {
			return nil, err
		}
		out = append(out, keys...)
		if len(keys) < pageMax || int64(len(out)) >= total {
			break
		}
	}
	return out, nil
}

// allTeams lists the teams p may see, page by page, up to listAll.
func (s *Server) allTeams(c *gin.Context) ([]service.TeamDetail, error) {
	var out []service.TeamDetail
	for page := 1; len(out) < listAll; page++ {
		teams, total, err := s.opts.Teams.ListTeams(ctxOf(c), PrincipalOf(c), "", page, pageMax)
		if err != nil {
			return nil, err
		}
		out = append(out, teams...)
		if len(teams) < pageMax || int64(len(out)) >= total {
			break
		}
	}
	return out, nil
}

// userInfoAdmin is LiteLLM's GET /user/info without user_id by an admin:
// no user, every key (dashboard sessions are not keys here) and every team.
func (s *Server) userInfoAdmin(c *gin.Context) error {
	keys, err := s.allKeys(c)
	if err != nil {
		return err
	}
	kv := make([]keyJSON, 0, len(keys))
	for _, k := range keys {
		kv = append(kv, keyView(k, ""))
	}
	teams, err := s.allTeams(c)
	if err != nil {
		return err
	}
	tv := make([]teamJSON, 0, len(teams))
	for _, t := range teams {
		tv = append(tv, teamView(t))
	}
	c.JSON(http.StatusOK, gin.H{"user_id": nil, "user_info": nil, "keys": kv, "teams": tv})
	return nil
}

// keyInfoV2 is POST /v2/key/info {"keys": [...]}: several keys at once,
// each by raw value or hash; every key must be one the caller may see.
func (s *Server) keyInfoV2(c *gin.Context) error {
	var in struct {
		Keys []string `json:"keys"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if len(in.Keys) == 0 {
		return apperr.InvalidParam("keys", "keys is required: a list of keys or key hashes.")
	}
	if len(in.Keys) > listAll {
		return apperr.InvalidParam("keys", "at most %d keys at once.", listAll)
	}
	info := make([]keyJSON, 0, len(in.Keys))
	hashes := make([]string, 0, len(in.Keys))
	for _, ref := range in.Keys {
		k, err := s.opts.Keys.KeyInfo(ctxOf(c), PrincipalOf(c), ref)
		if err != nil {
			return err
		}
		info = append(info, keyView(k, ""))
		hashes = append(hashes, k.Hash)
	}
	// LiteLLM echoes the keys as sent; the hashes are the safe echo.
	c.JSON(http.StatusOK, gin.H{"key": hashes, "info": info})
	return nil
}

// teamListV2 is GET /v2/team/list: a page of the teams the caller may see
// (admins: all; others: their own), with LiteLLM's paging fields.
func (s *Server) teamListV2(c *gin.Context) error {
	page, size, err := pageParams(c, "page_size")
	if err != nil {
		return err
	}
	if page == 0 {
		page = 1
	}
	if size == 0 {
		size = 10
	}
	p := PrincipalOf(c)
	userID := c.Query("user_id")
	if userID == "" && !p.Can(rbac.PermReadAll) {
		userID = p.UserID
	}
	teams, total, err := s.opts.Teams.ListTeams(ctxOf(c), p, userID, page, size)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(teams))
	for _, t := range teams {
		m := structToMap(teamView(t))
		m["team_memberships"] = membershipsView(t.Members)
		out = append(out, m)
	}
	c.JSON(http.StatusOK, gin.H{"teams": out, "total": total, "page": page, "page_size": size, "total_pages": totalPages(total, size)})
	return nil
}

// keyAliases is GET /key/aliases: the aliases of the keys the caller may
// see (admins: all keys; others: their own), sorted, paged.
func (s *Server) keyAliases(c *gin.Context) error {
	page, size, err := pageParams(c, "size")
	if err != nil {
		return err
	}
	if page == 0 {
		page = 1
	}
	if size == 0 {
		size = 50
	}
	keys, err := s.allKeys(c)
	if err != nil {
		return err
	}
	search := strings.ToLower(c.Query("search"))
	var aliases []string
	for _, k := range keys {
		if k.Alias != "" && strings.Contains(strings.ToLower(k.Alias), search) {
			aliases = append(aliases, k.Alias)
		}
	}
	sort.Strings(aliases)
	total := int64(len(aliases))
	from := min((page-1)*size, len(aliases))
	to := min(from+size, len(aliases))
	c.JSON(http.StatusOK, gin.H{"aliases": nonNil(aliases[from:to]), "total_count": total, "current_page": page,
		"total_pages": totalPages(total, size), "size": size})
	return nil
}

// baseURL is the configured base (PROXY_BASE_URL, else the listen
// address): never the request's Host.
func (s *Server) baseURL(_ *gin.Context) string {
	return strings.TrimSuffix(s.opts.BaseURL, "/")
}

// ssoUISettings is LiteLLM's GET /sso/get/ui_settings, which its dashboard
// reads after sign-in.
func (s *Server) ssoUISettings(c *gin.Context) error {
	c.JSON(http.StatusOK, gin.H{"PROXY_BASE_URL": s.baseURL(c), "PROXY_LOGOUT_URL": strPtr(s.opts.LogoutURL),
		"DEFAULT_TEAM_DISABLED": false, "SSO_ENABLED": len(s.opts.SSO.Providers) > 0, "NUM_SPEND_LOGS_ROWS": 0,
		"DISABLE_EXPENSIVE_DB_QUERIES": false})
	return nil
}

// uiConfig is LiteLLM's public GET /litellm/.well-known/litellm-ui-config
// (also at /.well-known/litellm-ui-config), read before sign-in.
func (s *Server) uiConfig(c *gin.Context) error {
	c.JSON(http.StatusOK, gin.H{"server_root_path": "/", "proxy_base_url": s.baseURL(c), "auto_redirect_to_sso": false,
		"admin_ui_disabled": false, "sso_configured": len(s.opts.SSO.Providers) > 0})
	return nil
}

// onboardingToken is the token field of GET /onboarding/get_token.
// LiteLLM's dashboard only decodes it (reading user_id and user_email) and
// sends it back with /onboarding/claim_token, which here needs no
// credential: so it is an unsigned JWT ("alg":"none") that carries no
// authority anywhere — Keygate pins its own algorithms and never accepts
// it — and holds nothing the caller did not send or may not see.
func onboardingToken(userID, email, inviteID string, exp time.Time) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + enc(map[string]any{
		"user_id": userID, "user_email": email, "invitation_link": inviteID, "token_type": "litellm_onboarding",
		"exp": exp.Unix()}) + "."
}
