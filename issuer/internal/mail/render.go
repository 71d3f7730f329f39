package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"net/mail"
	"net/url"
	"strings"
	texttemplate "text/template"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// ErrMalformed: a Mail the Queue cannot render (an unknown template,
// missing or bad Data, a bad address). It is the caller's bug, never an
// outage, so it does not wrap auth.ErrUnavailable.
var ErrMalformed = errors.New("mail: malformed message")

//go:embed templates
var templateFS embed.FS

// required lists each template's Data keys.
var required = map[string][]string{
	auth.MailVerifyEmail:     {auth.MailLink, auth.MailEmail},
	auth.MailResetPassword:   {auth.MailLink},
	auth.MailEmailChanged:    {auth.MailNewEmail},
	auth.MailPasswordChanged: nil,
	auth.MailAccountDeleted:  nil,
}

// Templates lists the template names the package renders.
func Templates() []string {
	out := make([]string, 0, len(required))
	for name := range required {
		out = append(out, name)
	}
	return out
}

// view is what a template sees.
type view struct {
	Product string            // the product name, in subjects and the footer
	Site    string            // JOTGUARD_PUBLIC_URL, in the footer
	To      string            // the recipient
	Subject string            // the rendered subject (the HTML title)
	Data    map[string]string // auth.Mail.Data
}

// content is a rendered message.
type content struct {
	Subject, Text, HTML string
}

// templates holds the parsed text and HTML templates of every name in
// required. Each text template defines "subject" and "body"; each HTML
// template defines "body"; the layouts wrap the bodies.
type templates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

func parseTemplates() (*templates, error) {
	t := &templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for name := range required {
		tt, err := texttemplate.New("layout.txt").Option("missingkey=error").
			ParseFS(templateFS, "templates/layout.txt", "templates/"+name+".txt")
		if err != nil {
			return nil, fmt.Errorf("mail: template %s: %w", name, err)
		}
		ht, err := htmltemplate.New("layout.html").Option("missingkey=error").
			ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("mail: template %s: %w", name, err)
		}
		t.text[name], t.html[name] = tt, ht
	}
	return t, nil
}

// render checks m and renders it.
func (t *templates) render(m auth.Mail, product, site string) (content, error) {
	keys, ok := required[m.Template]
	if !ok {
		return content{}, fmt.Errorf("%w: unknown template %q", ErrMalformed, m.Template)
	}
	if err := checkAddress(m.To); err != nil {
		return content{}, fmt.Errorf("%w: %s: recipient: %w", ErrMalformed, m.Template, err)
	}
	for _, k := range keys {
		v := m.Data[k]
		if strings.TrimSpace(v) == "" {
			return content{}, fmt.Errorf("%w: %s: Data[%q] is missing", ErrMalformed, m.Template, k)
		}
		switch k {
		case auth.MailLink:
			if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return content{}, fmt.Errorf("%w: %s: Data[%q] is not an absolute http(s) URL", ErrMalformed, m.Template, k)
			}
		case auth.MailEmail, auth.MailNewEmail:
			if err := checkAddress(v); err != nil {
				return content{}, fmt.Errorf("%w: %s: Data[%q]: %w", ErrMalformed, m.Template, k, err)
			}
		}
	}
	v := view{Product: product, Site: site, To: m.To, Data: m.Data}
	var subject, text, html bytes.Buffer
	tt := t.text[m.Template]
	if err := tt.ExecuteTemplate(&subject, "subject", v); err != nil {
		return content{}, fmt.Errorf("%w: %s: subject: %w", ErrMalformed, m.Template, err)
	}
	v.Subject = strings.Join(strings.Fields(subject.String()), " ") // one line
	if err := tt.Execute(&text, v); err != nil {
		return content{}, fmt.Errorf("%w: %s: text: %w", ErrMalformed, m.Template, err)
	}
	if err := t.html[m.Template].Execute(&html, v); err != nil {
		return content{}, fmt.Errorf("%w: %s: html: %w", ErrMalformed, m.Template, err)
	}
	return content{Subject: v.Subject, Text: strings.TrimLeft(text.String(), "\n"), HTML: html.String()}, nil
}

// checkAddress accepts a bare address (no display name, no line breaks).
func checkAddress(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return err
	}
	if a.Address != s || a.Name != "" {
		return fmt.Errorf("want a bare address like ada@example.com")
	}
	return nil
}
