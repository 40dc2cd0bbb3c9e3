// Package scim serves SCIM 2.0 provisioning (RFC 7643 and RFC 7644) under
// /scim/v2, so that an identity provider (Okta, Microsoft Entra ID,
// OneLogin, ...) creates, changes, deactivates and deletes Keygate users
// and keeps groups (teams) and their members.
//
// It translates SCIM's wire format — resources, filters, PATCH operations,
// list responses, SCIM's error schema — into the service layer's directory
// operations (internal/service/scim.go), which hold every rule. Its routes
// join the API's route table with the permission rbac.PermSCIM, which only
// the master key and ownerless keys of type "scim" hold. Filters are
// parsed by github.com/scim2/filter-parser/v2, a parser of RFC 7644's
// filter and path grammar that returns an AST, which this package maps onto
// store conditions that the database evaluates.
package scim

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/httperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// Prefix is where SCIM is served; the base URL an IdP is given is
// <PROXY_BASE_URL>/scim/v2.
const Prefix = "/scim/v2"

// SCIM schema and message URNs.
const (
	schemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	schemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	schemaSPConfig   = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	schemaResType    = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	schemaSchema     = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	msgList          = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	msgPatch         = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	msgError         = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// contentType is SCIM's media type; requests may also use
// application/json.
const contentType = "application/scim+json"

// Ops is what the handlers need of the service layer.
type Ops interface {
	ListDirectoryUsers(ctx context.Context, p auth.Principal, where *store.Cond, offset, limit int, withGroups bool) ([]service.DirectoryUser, int64, error)
	GetDirectoryUser(ctx context.Context, p auth.Principal, id string) (service.DirectoryUser, error)
	CreateDirectoryUser(ctx context.Context, p auth.Principal, in service.DirectoryUser) (service.DirectoryUser, error)
	UpdateDirectoryUser(ctx context.Context, p auth.Principal, id string, change func(*service.DirectoryUser) error) (service.DirectoryUser, error)
	DeleteDirectoryUser(ctx context.Context, p auth.Principal, id string) error
	ListDirectoryGroups(ctx context.Context, p auth.Principal, where *store.Cond, offset, limit int, withMembers bool) ([]service.DirectoryGroup, int64, error)
	GetDirectoryGroup(ctx context.Context, p auth.Principal, id string, withMembers bool) (service.DirectoryGroup, error)
	CreateDirectoryGroup(ctx context.Context, p auth.Principal, in service.DirectoryGroup) (service.DirectoryGroup, error)
	UpdateDirectoryGroup(ctx context.Context, p auth.Principal, id string, change func(*service.DirectoryGroup) error) (service.DirectoryGroup, error)
	DeleteDirectoryGroup(ctx context.Context, p auth.Principal, id string) error
}

// Options configures the SCIM handlers.
type Options struct {
	Ops Ops
	// BaseURL is PROXY_BASE_URL, for meta.location; empty means the
	// request's own scheme and host.
	BaseURL string
}

// Handler serves /scim/v2.
type Handler struct {
	ops  Ops
	base string
}

// New returns the SCIM handlers.
func New(o Options) *Handler {
	return &Handler{ops: o.Ops, base: strings.TrimRight(o.BaseURL, "/")}
}

// Routes is SCIM's part of the route table: every route needs
// rbac.PermSCIM.
func (h *Handler) Routes() []api.Route {
	const (
		get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
	)
	r := func(method, path string, fn httperr.HandlerFunc) api.Route {
		return api.Route{Method: method, Path: Prefix + path, Perm: rbac.PermSCIM, Handler: fn}
	}
	return []api.Route{
		r(get, "/ServiceProviderConfig", h.serviceProviderConfig),
		r(get, "/ResourceTypes", h.resourceTypes),
		r(get, "/ResourceTypes/:id", h.resourceType),
		r(get, "/Schemas", h.schemas),
		r(get, "/Schemas/:id", h.schema),
		r(get, "/Users", h.listUsers),
		r(post, "/Users", h.createUser),
		r(get, "/Users/:id", h.getUser),
		r(put, "/Users/:id", h.replaceUser),
		r(patch, "/Users/:id", h.patchUser),
		r(del, "/Users/:id", h.deleteUser),
		r(get, "/Groups", h.listGroups),
		r(post, "/Groups", h.createGroup),
		r(get, "/Groups/:id", h.getGroup),
		r(put, "/Groups/:id", h.replaceGroup),
		r(patch, "/Groups/:id", h.patchGroup),
		r(del, "/Groups/:id", h.deleteGroup),
	}
}

// Shape is a middleware for the whole engine: every error answered under
// /scim/v2 — authentication failures, forbidden roles, unknown paths,
// oversized bodies — uses SCIM's error schema instead of LiteLLM's.
func Shape() gin.HandlerFunc {
	return func(c *gin.Context) {
		if p := c.Request.URL.Path; p == Prefix || strings.HasPrefix(p, Prefix+"/") {
			httperr.UseShape(c, writeError)
		}
		c.Next()
	}
}

// reqCtx attaches the request's metadata for audit events.
func reqCtx(c *gin.Context) context.Context {
	return service.WithRequestMeta(c.Request.Context(), service.RequestMeta{ClientIP: c.ClientIP(),
		RequestID: httperr.RequestID(c)})
}

// baseURL is the absolute URL of /scim/v2 for meta.location.
func (h *Handler) baseURL(c *gin.Context) string {
	// From configuration only, never the request's Host; without a base
	// URL the location is relative.
	return h.base + Prefix
}

// send writes v as SCIM JSON with status.
func send(c *gin.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.Data(status, contentType, b)
	return nil
}
