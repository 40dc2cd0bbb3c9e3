package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/httperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
)

// UserOps is what the user routes need from the service layer.
type UserOps interface {
	CreateUser(ctx context.Context, p auth.Principal, in service.NewUser) (service.CreatedUser, error)
	GetUser(ctx context.Context, p auth.Principal, id string) (service.UserDetail, error)
	UpdateUser(ctx context.Context, p auth.Principal, in service.UserUpdate) (service.UserDetail, error)
	DeleteUsers(ctx context.Context, p auth.Principal, ids []string) ([]string, error)
	ListUsers(ctx context.Context, p auth.Principal, in service.UserListInput) ([]service.UserListItem, int64, error)
}

func ctxOf(c *gin.Context) context.Context {
	return service.WithRequestMeta(c.Request.Context(), service.RequestMeta{ClientIP: c.ClientIP(), RequestID: httperr.RequestID(c)})
}

func (s *Server) userNew(c *gin.Context) error {
	var in service.NewUser
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	// One service call: the user, its first key (auto_create_key, by
	// default) and its invitation (send_invite_email) are one transaction.
	d, err := s.opts.Users.CreateUser(ctxOf(c), PrincipalOf(c), in)
	if err != nil {
		return err
	}
	out := structToMap(userView(d.UserDetail))
	if k := d.Key; k != nil {
		out["key"], out["key_name"], out["token"], out["expires"] = k.Raw, k.Key.KeyName, k.Key.Hash, k.Key.ExpiresAt
		noStore(c)
	}
	if iss := d.Invitation; iss != nil {
		out["invitation_id"], out["invitation_link"], out["email_sent"] = iss.ID, iss.Link, iss.MailSent
		if iss.MailError != "" {
			out["email_error"] = iss.MailError
		}
	}
	c.JSON(http.StatusOK, out)
	return nil
}

func (s *Server) userInfo(c *gin.Context) error {
	p := PrincipalOf(c)
	id := c.Query("user_id")
	if id == "" && p.Role == rbac.RoleProxyAdmin && s.opts.Keys != nil && s.opts.Teams != nil {
		// LiteLLM's admin view (internal_user_endpoints: proxy_admin
		// without user_id); everyone else gets their own record.
		return s.userInfoAdmin(c)
	}
	if id == "" {
		id = p.UserID
	}
	if id == "" {
		return apperr.InvalidParam("user_id", "user_id is required when calling with the master key or an ownerless key.")
	}
	d, err := s.opts.Users.GetUser(ctxOf(c), p, id)
	if err != nil {
		return err
	}
	teams := make([]teamJSON, 0, len(d.Memberships))
	if s.opts.Teams != nil {
		for _, m := range d.Memberships {
			if td, err := s.opts.Teams.GetTeam(ctxOf(c), p, m.TeamID); err == nil {
				teams = append(teams, teamView(td))
			}
		}
	}
	out := map[string]any{"user_id": d.User.ID, "user_info": userView(d), "keys": []any{}, "teams": teams}
	for _, hook := range s.userInfoHooks {
		if err := hook(ctxOf(c), p, d, out); err != nil {
			return err
		}
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// userInfoV2 answers with the flat user row; like LiteLLM, a user the
// caller may not see is reported as not found rather than forbidden.
func (s *Server) userInfoV2(c *gin.Context) error {
	p := PrincipalOf(c)
	id := c.Query("user_id")
	if id == "" {
		id = p.UserID
	}
	if id == "" {
		return apperr.InvalidParam("user_id", "user_id is required when calling with the master key or an ownerless key.")
	}
	d, err := s.opts.Users.GetUser(ctxOf(c), p, id)
	if err != nil {
		if apperr.KindOf(err) == apperr.KindForbidden {
			return apperr.NotFound("User %q not found.", id)
		}
		return err
	}
	c.JSON(http.StatusOK, userView(d))
	return nil
}

func (s *Server) userUpdate(c *gin.Context) error {
	var in service.UserUpdate
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	d, err := s.opts.Users.UpdateUser(ctxOf(c), PrincipalOf(c), in)
	if err != nil {
		return err
	}
	// LiteLLM answers {"user_id", "data": <row>} (its dashboard reads
	// data.user_id); the row's fields stay at the top level too.
	out := structToMap(userView(d))
	out["data"] = userView(d)
	c.JSON(http.StatusOK, out)
	return nil
}

func (s *Server) userDelete(c *gin.Context) error {
	var in struct {
		UserIDs []string `json:"user_ids"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	ids, err := s.opts.Users.DeleteUsers(ctxOf(c), PrincipalOf(c), in.UserIDs)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"deleted_users": ids, "message": "Users and their keys, invitations, sessions and team memberships were deleted."})
	return nil
}

func (s *Server) userList(c *gin.Context) error {
	page, size, err := pageParams(c, "page_size")
	if err != nil {
		return err
	}
	in := service.UserListInput{Role: c.Query("role"), UserIDs: queryList(c, "user_ids"), EmailContains: c.Query("user_email"),
		TeamID: c.Query("team"), SSOUserIDs: queryList(c, "sso_user_ids"), Page: page, PageSize: size}
	items, total, err := s.opts.Users.ListUsers(ctxOf(c), PrincipalOf(c), in)
	if err != nil {
		return err
	}
	if page == 0 {
		page = 1
	}
	if size == 0 {
		size = 25
	}
	users := make([]map[string]any, 0, len(items))
	for _, it := range items {
		m := structToMap(userView(it.UserDetail))
		m["key_count"] = it.KeyCount
		users = append(users, m)
	}
	c.JSON(http.StatusOK, gin.H{"users": users, "total": total, "page": page, "page_size": size, "total_pages": totalPages(total, size)})
	return nil
}

func (s *Server) availableRoles(c *gin.Context) error {
	c.JSON(http.StatusOK, rbac.Describe())
	return nil
}
