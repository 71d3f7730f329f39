package mail

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

const testLink = "https://id.example.com/account/verify-email?token=tok_AbC-123"

// sample returns a well-formed Mail of each template.
func sample(template string) auth.Mail {
	data := map[string]string{}
	for _, k := range required[template] {
		switch k {
		case auth.MailLink:
			data[k] = testLink
		case auth.MailEmail:
			data[k] = "ada@example.com"
		case auth.MailNewEmail:
			data[k] = "ada.new@example.org"
		}
	}
	return auth.Mail{To: "ada@example.com", Template: template, Data: data}
}

// Every template the domain names renders: a one-line subject with the
// product name, a text and an HTML part that both show the link (as a
// link and as text), the data, the footer with the site; and nothing that
// loads from elsewhere (no tracking).
func TestTemplatesRender(t *testing.T) {
	tpl, err := parseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	names := []string{auth.MailVerifyEmail, auth.MailResetPassword, auth.MailEmailChanged,
		auth.MailPasswordChanged, auth.MailAccountDeleted}
	if got := Templates(); !sameSet(got, names) {
		t.Fatalf("Templates() = %v, want the domain's %v", got, names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			m := sample(name)
			c, err := tpl.render(m, "jotguard", "https://id.example.com")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(c.Subject, "jotguard") || strings.ContainsAny(c.Subject, "\r\n") {
				t.Errorf("subject %q: want one line naming the product", c.Subject)
			}
			for part, body := range map[string]string{"text": c.Text, "html": c.HTML} {
				if !strings.Contains(body, "https://id.example.com") || !strings.Contains(body, "jotguard") {
					t.Errorf("%s part lacks the product or the site:\n%s", part, body)
				}
				for k, v := range m.Data {
					if !strings.Contains(body, v) {
						t.Errorf("%s part lacks Data[%s] %q:\n%s", part, k, v, body)
					}
				}
			}
			if link := m.Data[auth.MailLink]; link != "" {
				if !strings.Contains(c.HTML, `href="`+link+`"`) {
					t.Errorf("HTML part: no <a href=%q>:\n%s", link, c.HTML)
				}
				if strings.Count(c.HTML, link) < 2 {
					t.Errorf("HTML part: the link is not also shown as text:\n%s", c.HTML)
				}
			}
			for _, bad := range []string{"<img", "<script", "src=", "<link", "@import", "url("} {
				if strings.Contains(strings.ToLower(c.HTML), bad) {
					t.Errorf("HTML part contains %q: no remote content, no tracking", bad)
				}
			}
			if !strings.HasSuffix(strings.TrimSpace(c.Text), "replies are not read.") || strings.HasPrefix(c.Text, "\n") {
				t.Errorf("text part layout:\n%q", c.Text)
			}
		})
	}
}

// The HTML part escapes the data; only http(s) links are accepted.
func TestRenderEscapesAndChecks(t *testing.T) {
	tpl, err := parseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	m := sample(auth.MailResetPassword)
	m.Data[auth.MailLink] = `https://id.example.com/account/reset-password?token=a&x="><script>alert(1)</script>`
	c, err := tpl.render(m, "jotguard", "https://id.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(c.HTML, "<script>") {
		t.Errorf("HTML part does not escape the link:\n%s", c.HTML)
	}

	for name, m := range map[string]auth.Mail{
		"unknown template":     {To: "ada@example.com", Template: "welcome"},
		"no link":              {To: "ada@example.com", Template: auth.MailResetPassword},
		"javascript link":      {To: "ada@example.com", Template: auth.MailResetPassword, Data: map[string]string{auth.MailLink: "javascript:alert(1)"}},
		"relative link":        {To: "ada@example.com", Template: auth.MailResetPassword, Data: map[string]string{auth.MailLink: "/account/reset-password?token=x"}},
		"no recipient":         {Template: auth.MailPasswordChanged},
		"display name":         {To: "Ada <ada@example.com>", Template: auth.MailPasswordChanged},
		"header injection":     {To: "ada@example.com\r\nBcc: eve@example.com", Template: auth.MailPasswordChanged},
		"bad new address":      {To: "ada@example.com", Template: auth.MailEmailChanged, Data: map[string]string{auth.MailNewEmail: "not an address"}},
		"verify without email": {To: "ada@example.com", Template: auth.MailVerifyEmail, Data: map[string]string{auth.MailLink: testLink}},
	} {
		if _, err := tpl.render(m, "jotguard", "https://id.example.com"); !errors.Is(err, ErrMalformed) || errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("%s: render error %v, want ErrMalformed (and not ErrUnavailable)", name, err)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
