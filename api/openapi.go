package api

import (
	_ "embed" // the OpenAPI document is embedded
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPIDocument is the hand-written OpenAPI 3.0 description of every
// route in the route table. openapi_test.go keeps the two in step: a route
// without a description, or a description without a route, fails it. It is
// a variable only because go:embed can fill nothing else; nothing writes it.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPIDocument returns a copy of the embedded OpenAPI document.
func OpenAPIDocument() []byte { return append([]byte(nil), openAPIDocument...) }

// openAPI is GET /openapi.json.
func (s *Server) openAPI(c *gin.Context) error {
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/json", openAPIDocument)
	return nil
}

// PublicHTTP makes a public route of a plain net/http handler, for
// endpoints served by other packages that do not import Gin (the metrics
// handler). The handler does its own authorization, if any.
func PublicHTTP(method, path string, h http.Handler) Route {
	return Route{Method: method, Path: path, Public: true, Handler: func(c *gin.Context) error {
		h.ServeHTTP(c.Writer, c.Request)
		return nil
	}}
}
