package app_test

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/jotguard/jotguard/issuer/internal/httpapi"
)

// Every response the app tests get from a real issuer is checked against
// the served OpenAPI document (status, content type, headers and body
// shape, problem codes): a route that answers something undocumented fails
// the test that caused it. TestOpenAPICoverage checks that the tests reach
// every documented operation.

var (
	oapiOnce   sync.Once
	oapiRouter routers.Router
	oapiErr    error

	coverageMu sync.Mutex
	covered    = map[string]bool{} // "METHOD /path"
)

func openAPIRouter(t testing.TB) routers.Router {
	t.Helper()
	oapiOnce.Do(func() {
		// Text documents: their schema is a string; the decoder reads them as one.
		for _, ct := range []string{"application/x-pem-file", "application/yaml", "text/html"} {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
		}
		var doc *openapi3.T
		doc, oapiErr = openapi3.NewLoader().LoadFromData(httpapi.OpenAPI)
		if oapiErr != nil {
			return
		}
		doc.Servers = nil // match any host: the test issuers listen on random ports
		oapiRouter, oapiErr = gorillamux.NewRouter(doc)
	})
	if oapiErr != nil {
		t.Fatalf("openapi.yaml: %v", oapiErr)
	}
	return oapiRouter
}

// checkOpenAPI validates res (whose body was read into body) against the
// document. Requests to paths the document does not have are not checked
// (tests of 404s and of unknown methods).
func checkOpenAPI(t testing.TB, req *http.Request, res *http.Response, body []byte) {
	t.Helper()
	route, params, err := openAPIRouter(t).FindRoute(req)
	if err != nil {
		return
	}
	coverageMu.Lock()
	covered[req.Method+" "+route.Path] = true
	coverageMu.Unlock()
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: res.StatusCode,
		Header: res.Header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true,
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	if err := openapi3filter.ValidateResponse(t.Context(), in); err != nil {
		t.Errorf("%s %s answered %d %s, which openapi.yaml does not allow: %v\nbody: %.300s",
			req.Method, req.URL.Path, res.StatusCode, res.Header.Get("Content-Type"), err, body)
	}
}

// TestMain checks, after every test ran, that the tests got an answer from
// every operation of the document (skipped for a filtered run: go test -run).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && os.Getenv("JOTGUARD_MONGO_URI") != "" {
		if missing := uncovered(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: no test got an answer from these operations of openapi.yaml: %v\n", missing)
			code = 1
		}
	}
	os.Exit(code)
}

// uncovered lists the operations no response was checked for.
func uncovered() []string {
	doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI)
	if err != nil {
		return []string{err.Error()}
	}
	coverageMu.Lock()
	defer coverageMu.Unlock()
	var missing []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !covered[method+" "+path] {
				missing = append(missing, method+" "+path)
			}
		}
	}
	slices.Sort(missing)
	return missing
}
