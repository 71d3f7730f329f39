package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// OpenAPI is the issuer's OpenAPI 3.1 document, served at GET /openapi.yaml.
// docs/openapi.yaml is a byte-equal copy (checked by deploy/demo/conformance);
// openapi_test.go checks it against the router.
//
//go:embed openapi.yaml
var OpenAPI []byte

func serveOpenAPI(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return c.Blob(http.StatusOK, "application/yaml", OpenAPI)
}
