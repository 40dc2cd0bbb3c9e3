package scim

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
)

// Discovery (RFC 7644 section 4): what this server supports, so a client
// can check before it provisions. The schemas list only the attributes
// Keygate keeps; others are accepted and dropped (see patch.go).

func (h *Handler) serviceProviderConfig(c *gin.Context) error {
	base := h.baseURL(c)
	return send(c, http.StatusOK, map[string]any{
		"schemas":        []string{schemaSPConfig},
		"patch":          map[string]any{"supported": true},
		"bulk":           map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":         map[string]any{"supported": true, "maxResults": service.MaxDirectoryPage},
		"changePassword": map[string]any{"supported": false},
		"sort":           map[string]any{"supported": false},
		"etag":           map[string]any{"supported": false},
		"authenticationSchemes": []map[string]any{{"type": "oauthbearertoken", "name": "Bearer token",
			"description": "A Keygate key of type scim (or the master key) in Authorization: Bearer.", "primary": true}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": base + "/ServiceProviderConfig"},
	})
}

func resourceTypeList(base string) []map[string]any {
	return []map[string]any{
		{"schemas": []string{schemaResType}, "id": "User", "name": "User", "endpoint": "/Users", "description": "Keygate user",
			"schema": schemaUser, "schemaExtensions": []map[string]any{{"schema": schemaEnterprise, "required": false}},
			"meta": map[string]any{"resourceType": "ResourceType", "location": base + "/ResourceTypes/User"}},
		{"schemas": []string{schemaResType}, "id": "Group", "name": "Group", "endpoint": "/Groups", "description": "Keygate team",
			"schema": schemaGroup, "meta": map[string]any{"resourceType": "ResourceType", "location": base + "/ResourceTypes/Group"}},
	}
}

func (h *Handler) resourceTypes(c *gin.Context) error {
	list := resourceTypeList(h.baseURL(c))
	return send(c, http.StatusOK, listResponse(int64(len(list)), 1, list))
}

func (h *Handler) resourceType(c *gin.Context) error {
	for _, r := range resourceTypeList(h.baseURL(c)) {
		if strings.EqualFold(r["id"].(string), c.Param("id")) {
			return send(c, http.StatusOK, r)
		}
	}
	return apperr.NotFound("Resource type %q not found.", truncate(c.Param("id")))
}

// attr describes one attribute in a Schema resource.
func attr(name, typ string, multi, required, caseExact bool, mutability, uniqueness string, sub ...map[string]any) map[string]any {
	a := map[string]any{"name": name, "type": typ, "multiValued": multi, "required": required, "caseExact": caseExact,
		"mutability": mutability, "returned": "default", "uniqueness": uniqueness}
	if len(sub) > 0 {
		a["subAttributes"] = sub
	}
	return a
}

func schemaList(base string) []map[string]any {
	meta := func(id string) map[string]any {
		return map[string]any{"resourceType": "Schema", "location": base + "/Schemas/" + id}
	}
	return []map[string]any{
		{"schemas": []string{schemaSchema}, "id": schemaUser, "name": "User", "description": "Keygate user; userName is the e-mail login name.",
			"attributes": []map[string]any{
				attr("userName", "string", false, true, false, "readWrite", "server"),
				attr("externalId", "string", false, false, true, "readWrite", "none"),
				attr("displayName", "string", false, false, false, "readWrite", "none"),
				attr("name", "complex", false, false, false, "readWrite", "none",
					attr("givenName", "string", false, false, false, "readWrite", "none"),
					attr("familyName", "string", false, false, false, "readWrite", "none"),
					attr("formatted", "string", false, false, false, "readOnly", "none")),
				attr("emails", "complex", true, false, false, "readWrite", "none",
					attr("value", "string", false, false, false, "readWrite", "none"),
					attr("type", "string", false, false, false, "readWrite", "none"),
					attr("primary", "boolean", false, false, false, "readWrite", "none")),
				attr("active", "boolean", false, false, false, "readWrite", "none"),
				attr("groups", "complex", true, false, false, "readOnly", "none",
					attr("value", "string", false, false, true, "readOnly", "none"),
					attr("display", "string", false, false, false, "readOnly", "none")),
			}, "meta": meta(schemaUser)},
		{"schemas": []string{schemaSchema}, "id": schemaGroup, "name": "Group", "description": "Keygate team managed by the identity provider.",
			"attributes": []map[string]any{
				attr("displayName", "string", false, true, false, "readWrite", "server"),
				attr("externalId", "string", false, false, true, "readWrite", "none"),
				attr("members", "complex", true, false, false, "readWrite", "none",
					attr("value", "string", false, false, true, "immutable", "none"),
					attr("display", "string", false, false, false, "readOnly", "none")),
			}, "meta": meta(schemaGroup)},
		{"schemas": []string{schemaSchema}, "id": schemaEnterprise, "name": "EnterpriseUser", "description": "Enterprise user (kept: employeeNumber, department).",
			"attributes": []map[string]any{
				attr("employeeNumber", "string", false, false, false, "readWrite", "none"),
				attr("department", "string", false, false, false, "readWrite", "none"),
			}, "meta": meta(schemaEnterprise)},
	}
}

func (h *Handler) schemas(c *gin.Context) error {
	list := schemaList(h.baseURL(c))
	return send(c, http.StatusOK, listResponse(int64(len(list)), 1, list))
}

func (h *Handler) schema(c *gin.Context) error {
	for _, s := range schemaList(h.baseURL(c)) {
		if strings.EqualFold(s["id"].(string), c.Param("id")) {
			return send(c, http.StatusOK, s)
		}
	}
	return apperr.NotFound("Schema %q not found.", truncate(c.Param("id")))
}
