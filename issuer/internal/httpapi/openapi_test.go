package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

// loadOpenAPI parses and validates the served document with a real OpenAPI
// library, as a client generator or a gateway would.
func loadOpenAPI(t *testing.T, doc []byte) *openapi3.T {
	t.Helper()
	d, err := openapi3.NewLoader().LoadFromData(doc)
	if err != nil {
		t.Fatalf("openapi.yaml does not load: %v", err)
	}
	if err := d.Validate(t.Context()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return d
}

// openAPIOperations returns "METHOD /path" for every operation of d.
func openAPIOperations(d *openapi3.T) []string {
	var ops []string
	for path, item := range d.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

func TestOpenAPIMatchesRouter(t *testing.T) {
	api := New(Options{})
	e, ok := api.Handler.(*echo.Echo)
	if !ok {
		t.Fatalf("API.Handler is %T, want *echo.Echo", api.Handler)
	}
	var routes []string
	for _, r := range e.Routes() {
		switch r.Method {
		case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
			routes = append(routes, r.Method+" "+echoToOpenAPI(r.Path))
		}
	}
	slices.Sort(routes)
	routes = slices.Compact(routes)
	doc := openAPIOperations(loadOpenAPI(t, OpenAPI))
	if len(doc) < 10 {
		t.Fatalf("found only %d operations in openapi.yaml: %v", len(doc), doc)
	}
	for _, r := range routes {
		if !slices.Contains(doc, r) {
			t.Errorf("route %s is served but not in openapi.yaml", r)
		}
	}
	for _, d := range doc {
		if !slices.Contains(routes, d) {
			t.Errorf("openapi.yaml documents %s, which the router does not serve", d)
		}
	}
}

// echoToOpenAPI writes Echo's /a/:id as OpenAPI's /a/{id}.
func echoToOpenAPI(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if name, ok := strings.CutPrefix(p, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
}

// Every problem code the API can answer is in the document's enum, and the
// enum names no code the API never answers.
func TestOpenAPIProblemCodes(t *testing.T) {
	d := loadOpenAPI(t, OpenAPI)
	ref := d.Components.Schemas["Problem"]
	if ref == nil || ref.Value.Properties["code"] == nil {
		t.Fatal("openapi.yaml has no Problem schema with a code")
	}
	var documented []string
	for _, v := range ref.Value.Properties["code"].Value.Enum {
		documented = append(documented, v.(string))
	}
	answered := []string{classify(errors.New("an unknown failure")).Code}
	for _, p := range problems {
		answered = append(answered, p.code)
	}
	for _, c := range answered {
		if !slices.Contains(documented, c) {
			t.Errorf("problem code %q is answered but not in openapi.yaml", c)
		}
	}
	for _, c := range documented {
		if !slices.Contains(answered, c) {
			t.Errorf("openapi.yaml lists problem code %q, which the API never answers", c)
		}
	}
}

// The document must keep loading: an unquoted "a: b" inside a flow mapping
// or a description is what broke it before.
func TestOpenAPILoaderSeesABrokenDocument(t *testing.T) {
	broken := bytes.Replace(OpenAPI, []byte(`description: "The JWKS; `), []byte(`description: The JWKS; `), 1)
	if bytes.Equal(broken, OpenAPI) {
		t.Fatal("the edit did not apply")
	}
	if _, err := openapi3.NewLoader().LoadFromData(broken); err == nil {
		t.Fatal("a document with an unquoted colon in a description loaded")
	}
}

func TestServesOpenAPI(t *testing.T) {
	api := New(Options{})
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.yaml", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusOK || !bytes.Equal(body, OpenAPI) || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/yaml") {
		t.Fatalf("GET /openapi.yaml: %d %q, %d bytes", rec.Code, rec.Header().Get("Content-Type"), len(body))
	}
	if !bytes.Contains(OpenAPI, []byte("openapi: 3.1.0")) {
		t.Fatal("openapi.yaml is not OpenAPI 3.1")
	}
}
