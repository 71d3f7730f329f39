package echoauth_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/echoauth"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// Protect an Echo route group (users only); admins only on one route.
func ExampleMiddleware() {
	iss, err := sdktest.StartIssuer() // in production: the jotguard issuer's URL
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := sdk.NewVerifier(ctx, sdk.Config{Issuer: iss.URL, Audience: []string{"jotguard"}})
	if err != nil {
		log.Fatal(err)
	}
	for v.Ready() != nil { // keys loaded; a service's /readyz says so
		time.Sleep(10 * time.Millisecond)
	}

	// docs/sdk.md: echo
	e := echo.New()
	api := e.Group("/api", echoauth.Middleware(v, sdk.RequireRoles("user")))
	api.GET("/me", func(c echo.Context) error {
		claims, _ := sdk.ClaimsFromContext(c.Request().Context()) // or echoauth.ClaimsFrom(c)
		return c.JSON(http.StatusOK, map[string]string{"sub": claims.Subject})
	})
	// docs/sdk.md: end
	api.DELETE("/users/:id", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) },
		echoauth.Middleware(v, sdk.RequireRoles("admin")))

	call := func(method, path, token string) {
		req := httptest.NewRequest(method, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body.String())
	}
	ada := iss.Claims("ada")
	ada.Roles = []string{"user"}
	user := iss.Mint(nil, ada)
	call(http.MethodGet, "/api/me", user)
	call(http.MethodGet, "/api/me", "")
	call(http.MethodDelete, "/api/users/42", user)
	// Output:
	// 200  {"sub":"ada"}
	//
	// 401 Bearer {"message":"Unauthorized"}
	//
	// 403 Bearer error="insufficient_scope", error_description="insufficient scope" {"message":"Forbidden"}
}
