package scim

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/internal/service"
)

// defaultCount is the page size when a list request names none.
const defaultCount = 100

// paging reads startIndex (1-based, values below 1 mean 1) and count
// (0 asks for the total only; capped at the service's page size).
func paging(c *gin.Context) (start, count int, err error) {
	start, count = 1, defaultCount
	if v := c.Query("startIndex"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil {
			return 0, 0, bad(typeInvalidValue, "startIndex must be an integer.")
		}
		start = max(n, 1)
	}
	if v := c.Query("count"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil {
			return 0, 0, bad(typeInvalidValue, "count must be an integer.")
		}
		count = min(max(n, 0), service.MaxDirectoryPage)
	}
	if start > 10_000_000 {
		return 0, 0, bad(typeInvalidValue, "startIndex is too large.")
	}
	return start, count, nil
}

func listResponse(total int64, start int, resources []map[string]any) map[string]any {
	if resources == nil {
		resources = []map[string]any{}
	}
	return map[string]any{"schemas": []string{msgList}, "totalResults": total, "itemsPerPage": len(resources),
		"startIndex": start, "Resources": resources}
}

// ---- users ----

func (h *Handler) listUsers(c *gin.Context) error {
	where, err := parseFilter(c.Query("filter"), userFilter)
	if err != nil {
		return err
	}
	start, count, err := paging(c)
	if err != nil {
		return err
	}
	proj := parseProjection(c.Query("attributes"), c.Query("excludedAttributes"), schemaUser)
	// count=0 still needs the total: ask for one row and drop it.
	users, total, err := h.ops.ListDirectoryUsers(reqCtx(c), api.PrincipalOf(c), where, start-1, max(count, 1), proj.wants("groups"))
	if err != nil {
		return err
	}
	if count == 0 {
		users = nil
	}
	base := h.baseURL(c)
	out := make([]map[string]any, 0, len(users))
	for _, u := range users {
		out = append(out, proj.apply(h.userResource(base, u)))
	}
	return send(c, http.StatusOK, listResponse(total, start, out))
}

func (h *Handler) getUser(c *gin.Context) error {
	d, err := h.ops.GetDirectoryUser(reqCtx(c), api.PrincipalOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	proj := parseProjection(c.Query("attributes"), c.Query("excludedAttributes"), schemaUser)
	return send(c, http.StatusOK, proj.apply(h.userResource(h.baseURL(c), d)))
}

func (h *Handler) createUser(c *gin.Context) error {
	body, err := readObject(c)
	if err != nil {
		return err
	}
	in, _, err := parseUser(body)
	if err != nil {
		return err
	}
	d, err := h.ops.CreateDirectoryUser(reqCtx(c), api.PrincipalOf(c), in)
	if err != nil {
		return err
	}
	r := h.userResource(h.baseURL(c), d)
	c.Header("Location", h.baseURL(c)+"/Users/"+d.ID)
	return send(c, http.StatusCreated, r)
}

// replaceUser is PUT: the body replaces every attribute Keygate keeps;
// "active" left out keeps the current status.
func (h *Handler) replaceUser(c *gin.Context) error {
	body, err := readObject(c)
	if err != nil {
		return err
	}
	in, hasActive, err := parseUser(body)
	if err != nil {
		return err
	}
	d, err := h.ops.UpdateDirectoryUser(reqCtx(c), api.PrincipalOf(c), c.Param("id"), func(cur *service.DirectoryUser) error {
		next := in
		next.ID = cur.ID
		if !hasActive {
			next.Active = cur.Active
		}
		*cur = next
		return nil
	})
	if err != nil {
		return err
	}
	return send(c, http.StatusOK, h.userResource(h.baseURL(c), d))
}

func (h *Handler) patchUser(c *gin.Context) error {
	body, err := readObject(c)
	if err != nil {
		return err
	}
	ops, err := parsePatch(body)
	if err != nil {
		return err
	}
	d, err := h.ops.UpdateDirectoryUser(reqCtx(c), api.PrincipalOf(c), c.Param("id"), func(cur *service.DirectoryUser) error {
		return applyUserPatch(cur, ops)
	})
	if err != nil {
		return err
	}
	return send(c, http.StatusOK, h.userResource(h.baseURL(c), d))
}

func (h *Handler) deleteUser(c *gin.Context) error {
	if err := h.ops.DeleteDirectoryUser(reqCtx(c), api.PrincipalOf(c), c.Param("id")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// ---- groups ----

func (h *Handler) listGroups(c *gin.Context) error {
	where, err := parseFilter(c.Query("filter"), groupFilter)
	if err != nil {
		return err
	}
	start, count, err := paging(c)
	if err != nil {
		return err
	}
	proj := parseProjection(c.Query("attributes"), c.Query("excludedAttributes"), schemaGroup)
	groups, total, err := h.ops.ListDirectoryGroups(reqCtx(c), api.PrincipalOf(c), where, start-1, max(count, 1), proj.wants("members"))
	if err != nil {
		return err
	}
	if count == 0 {
		groups = nil
	}
	base := h.baseURL(c)
	out := make([]map[string]any, 0, len(groups))
	for _, g := range groups {
		out = append(out, proj.apply(h.groupResource(base, g)))
	}
	return send(c, http.StatusOK, listResponse(total, start, out))
}

func (h *Handler) getGroup(c *gin.Context) error {
	proj := parseProjection(c.Query("attributes"), c.Query("excludedAttributes"), schemaGroup)
	g, err := h.ops.GetDirectoryGroup(reqCtx(c), api.PrincipalOf(c), c.Param("id"), proj.wants("members"))
	if err != nil {
		return err
	}
	return send(c, http.StatusOK, proj.apply(h.groupResource(h.baseURL(c), g)))
}

func (h *Handler) createGroup(c *gin.Context) error {
	body, err := readObject(c)
	if err != nil {
		return err
	}
	in, err := parseGroup(body)
	if err != nil {
		return err
	}
	g, err := h.ops.CreateDirectoryGroup(reqCtx(c), api.PrincipalOf(c), in)
	if err != nil {
		return err
	}
	c.Header("Location", h.baseURL(c)+"/Groups/"+g.ID)
	return send(c, http.StatusCreated, h.groupResource(h.baseURL(c), g))
}

// replaceGroup is PUT: name, externalId and the member list are replaced.
func (h *Handler) replaceGroup(c *gin.Context) error {
	body, err := readObject(c)
	if err != nil {
		return err
	}
	in, err := parseGroup(body)
	if err != nil {
		return err
	}
	g, err := h.ops.UpdateDirectoryGroup(reqCtx(c), api.PrincipalOf(c), c.Param("id"), func(cur *service.DirectoryGroup) error {
		cur.DisplayName, cur.ExternalID, cur.Members = in.DisplayName, in.ExternalID, dedupe(in.Members)
		return nil
	})
	if err != nil {
		return err
	}
	return send(c, http.StatusOK, h.groupResource(h.baseURL(c), g))
}

// patchGroup answers 200 with the group, as Okta expects; Entra accepts
// 200 or 204. With excludedAttributes=members the (possibly large)
// member list is left out.
func (h *Handler) patchGroup(c *gin.Context) error {
	body, err := readObject(c)
	if err != nil {
		return err
	}
	ops, err := parsePatch(body)
	if err != nil {
		return err
	}
	g, err := h.ops.UpdateDirectoryGroup(reqCtx(c), api.PrincipalOf(c), c.Param("id"), func(cur *service.DirectoryGroup) error {
		return applyGroupPatch(cur, ops)
	})
	if err != nil {
		return err
	}
	proj := parseProjection(c.Query("attributes"), c.Query("excludedAttributes"), schemaGroup)
	return send(c, http.StatusOK, proj.apply(h.groupResource(h.baseURL(c), g)))
}

func (h *Handler) deleteGroup(c *gin.Context) error {
	if err := h.ops.DeleteDirectoryGroup(reqCtx(c), api.PrincipalOf(c), c.Param("id")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
