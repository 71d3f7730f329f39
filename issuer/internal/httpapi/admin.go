package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/labstack/echo/v4"
)

// The administration API: users, the audit log, service accounts. Every
// route needs a Bearer access token with the admin role (auth.Service.Admin):
// 401 with an RFC 6750 challenge without a valid one, 403
// insufficient_scope without the role. Answers are never cached.

// adminRoutes registers the administration API on e.
func (h *handler) adminRoutes(e *echo.Echo) {
	g := e.Group("/admin", h.requireAdmin)
	g.GET("/users", h.adminListUsers)
	g.GET("/users/:id", h.adminGetUser)
	g.PATCH("/users/:id", h.adminUpdateUser)
	g.DELETE("/users/:id", h.adminDeleteUser)
	g.POST("/users/:id/logout", h.adminLogoutUser)
	g.GET("/audit", h.adminAudit)
	g.POST("/clients", h.adminCreateClient)
	g.GET("/clients", h.adminListClients)
	g.DELETE("/clients/:id", h.adminDeleteClient)
}

const adminKey = "jotguard.admin"

// requireAdmin authenticates the administrator and keeps it in the Echo
// context for the handler.
func (h *handler) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		tok, err := requireBearer(c)
		if err != nil {
			return err
		}
		a, err := h.o.Service.Admin(c.Request().Context(), tok)
		if err != nil {
			return bearerFailed(c, err)
		}
		c.Set(adminKey, a)
		return next(c)
	}
}

func admin(c echo.Context) auth.Admin {
	a, _ := c.Get(adminKey).(auth.Admin)
	return a
}

// adminUserJSON is a user as the administration API shows it.
type adminUserJSON struct {
	userJSON
	Disabled bool `json:"disabled"`
}

func toAdminJSON(u auth.User) adminUserJSON {
	return adminUserJSON{userJSON: toJSON(u), Disabled: u.Disabled}
}

// cursor is a page's next_cursor: null on the last page.
func cursor(next string) *string {
	if next == "" {
		return nil
	}
	return &next
}

// queryLimit reads the limit query parameter; 0 when absent.
func queryLimit(c echo.Context) (int, error) {
	s := c.QueryParam("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 { // 0 would be the default page size

		return 0, &auth.ValidationError{Fields: []auth.FieldError{{Field: "limit", Reason: "must be 1 to 200"}}}
	}
	return n, nil
}

func (h *handler) adminListUsers(c echo.Context) error {
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	users, next, err := h.o.Service.ListUsers(c.Request().Context(), admin(c),
		auth.UserQuery{Query: c.QueryParam("query"), Limit: limit, After: c.QueryParam("cursor")})
	if err != nil {
		return err
	}
	out := make([]adminUserJSON, len(users))
	for i, u := range users {
		out[i] = toAdminJSON(u)
	}
	return c.JSON(http.StatusOK, map[string]any{"users": out, "next_cursor": cursor(next)})
}

func (h *handler) adminGetUser(c echo.Context) error {
	u, err := h.o.Service.AdminUser(c.Request().Context(), admin(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAdminJSON(u))
}

// readUserUpdate decodes the body of PATCH /admin/users/{id}: roles (a
// list of strings), disabled and email_verified (booleans), each optional;
// other members are refused, so a misspelt one is not silently ignored.
func readUserUpdate(c echo.Context) (auth.UserUpdate, error) {
	var up auth.UserUpdate
	raw, err := readObject(c, false)
	if err != nil {
		return up, err
	}
	v := &auth.ValidationError{}
	for k, r := range raw {
		var err error
		switch k {
		case "roles":
			up.Roles = new([]string)
			err = json.Unmarshal(r, up.Roles)
			if err == nil && *up.Roles == nil {
				err = errors.New("null")
			}
		case "disabled":
			up.Disabled = new(bool)
			err = json.Unmarshal(r, up.Disabled)
		case "email_verified":
			up.EmailVerified = new(bool)
			err = json.Unmarshal(r, up.EmailVerified)
		default:
			v.Fields = append(v.Fields, auth.FieldError{Field: k, Reason: "is not a member of a user update (roles, disabled, email_verified)"})
			continue
		}
		if err != nil || string(r) == "null" {
			reason := "must be true or false"
			if k == "roles" {
				reason = "must be a list of strings"
			}
			v.Fields = append(v.Fields, auth.FieldError{Field: k, Reason: reason})
		}
	}
	if len(v.Fields) > 0 {
		return up, v
	}
	return up, nil
}

func (h *handler) adminUpdateUser(c echo.Context) error {
	up, err := readUserUpdate(c)
	if err != nil {
		return err
	}
	u, err := h.o.Service.UpdateUser(c.Request().Context(), admin(c), c.Param("id"), up)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAdminJSON(u))
}

func (h *handler) adminDeleteUser(c echo.Context) error {
	if err := h.o.Service.DeleteUser(c.Request().Context(), admin(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *handler) adminLogoutUser(c echo.Context) error {
	if err := h.o.Service.LogoutUser(c.Request().Context(), admin(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// auditJSON is an audit entry as GET /admin/audit shows it.
type auditJSON struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	Actor     string    `json:"actor"`
	Target    string    `json:"target"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	RequestID string    `json:"request_id"`
	Detail    string    `json:"detail,omitempty"`
}

func (h *handler) adminAudit(c echo.Context) error {
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	entries, next, err := h.o.Service.Audit(c.Request().Context(), admin(c), auth.AuditQuery{UserID: c.QueryParam("user_id"),
		Type: c.QueryParam("type"), Limit: limit, Before: c.QueryParam("cursor")})
	if err != nil {
		return err
	}
	out := make([]auditJSON, len(entries))
	for i, e := range entries {
		out[i] = auditJSON{ID: e.ID, Time: e.Time, Type: e.Type, Actor: e.Actor, Target: e.Target, IP: e.IP,
			UserAgent: e.UserAgent, RequestID: e.RequestID, Detail: e.Detail}
	}
	return c.JSON(http.StatusOK, map[string]any{"entries": out, "next_cursor": cursor(next)})
}

// clientJSON is a service account as the administration API shows it:
// never its secret, of which only a hash is kept.
type clientJSON struct {
	ClientID  string    `json:"client_id"`
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

func toClientJSON(cl auth.Client) clientJSON {
	roles := cl.Roles
	if roles == nil {
		roles = []string{}
	}
	return clientJSON{ClientID: cl.ID, Name: cl.Name, Roles: roles, CreatedAt: cl.CreatedAt, CreatedBy: cl.CreatedBy}
}

func (h *handler) adminCreateClient(c echo.Context) error {
	raw, err := readObject(c, false)
	if err != nil {
		return err
	}
	var in struct {
		Name  string
		Roles []string
	}
	v := &auth.ValidationError{}
	if r, ok := raw["name"]; !ok || json.Unmarshal(r, &in.Name) != nil {
		v.Fields = append(v.Fields, auth.FieldError{Field: "name", Reason: "is required, a string"})
	}
	if r, ok := raw["roles"]; ok && json.Unmarshal(r, &in.Roles) != nil {
		v.Fields = append(v.Fields, auth.FieldError{Field: "roles", Reason: "must be a list of strings"})
	}
	if len(v.Fields) > 0 {
		return v
	}
	cl, secret, err := h.o.Service.CreateClient(c.Request().Context(), admin(c), in.Name, in.Roles)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/admin/clients/"+cl.ID)
	return c.JSON(http.StatusCreated, struct {
		clientJSON
		ClientSecret string `json:"client_secret"`
	}{toClientJSON(cl), secret})
}

func (h *handler) adminListClients(c echo.Context) error {
	all, err := h.o.Service.Clients(c.Request().Context(), admin(c))
	if err != nil {
		return err
	}
	out := make([]clientJSON, len(all))
	for i, cl := range all {
		out[i] = toClientJSON(cl)
	}
	return c.JSON(http.StatusOK, map[string]any{"clients": out})
}

func (h *handler) adminDeleteClient(c echo.Context) error {
	if err := h.o.Service.DeleteClient(c.Request().Context(), admin(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
