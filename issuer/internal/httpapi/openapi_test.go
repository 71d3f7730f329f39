package httpapi

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// openAPIOperations returns "METHOD /path" for every operation under the
// document's top-level paths: key (paths at indent 2, methods at indent 4).
func openAPIOperations(t *testing.T, doc []byte) []string {
	t.Helper()
	var ops []string
	inPaths, path := false, ""
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case indent == 0:
			inPaths = trimmed == "paths:"
		case !inPaths:
		case indent == 2 && strings.HasPrefix(trimmed, "/") && strings.HasSuffix(trimmed, ":"):
			path = strings.TrimSuffix(trimmed, ":")
		case indent == 4 && path != "":
			m, _, _ := strings.Cut(trimmed, ":")
			switch m {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				ops = append(ops, strings.ToUpper(m)+" "+path)
			}
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
			routes = append(routes, r.Method+" "+r.Path)
		}
	}
	slices.Sort(routes)
	routes = slices.Compact(routes)
	doc := openAPIOperations(t, OpenAPI)
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

func TestOpenAPIParserSeesAChange(t *testing.T) {
	// The check above must be able to fail: a document missing a path
	// yields one operation fewer.
	full := openAPIOperations(t, OpenAPI)
	cut := bytes.Replace(OpenAPI, []byte("\n  /me:\n"), []byte("\n  /not-me:\n"), 1)
	got := openAPIOperations(t, cut)
	if slices.Contains(got, "GET /me") || !slices.Contains(got, "GET /not-me") || len(got) != len(full) {
		t.Fatalf("parser did not follow the edit: %v", got)
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
