package httperr

import "github.com/gin-gonic/gin"

// Shape writes an error response in an envelope other than LiteLLM's:
// SCIM clients expect SCIM's error schema from everything under /scim/v2,
// including authentication failures and unknown paths. status and message
// are the public ones Resolve chose; err is the original error (nil for
// the router's 404/405), from which a shape may read protocol details.
type Shape func(c *gin.Context, status int, message string, err error)

const shapeKey = "keygate.error_shape"

// UseShape makes every later error response of this request (Write, the
// route guard's, NotFound, MethodNotAllowed) go through shape. A
// middleware sets it for the paths of one protocol.
func UseShape(c *gin.Context, shape Shape) { c.Set(shapeKey, shape) }

func shapeOf(c *gin.Context) (Shape, bool) {
	v, ok := c.Get(shapeKey)
	if !ok {
		return nil, false
	}
	sh, ok := v.(Shape)
	return sh, ok
}
