package pages

import (
	"fmt"
	"strings"
)

// fieldSpec is how an input of the pages looks: its label, type and the
// hints browsers and password managers use.
type fieldSpec struct {
	Label        string
	Type         string
	Autocomplete string
	Required     bool
	hint         func(v *view) string
}

// The pages' inputs, by name. Each name is unique across a page, so it is
// also the input's id.
var fieldSpecs = map[string]fieldSpec{
	"identifier":       {Label: "Email or username", Type: "text", Autocomplete: "username", Required: true},
	"password":         {Label: "Password", Type: "password", Autocomplete: "current-password", Required: true},
	"email":            {Label: "Email address", Type: "email", Autocomplete: "email", Required: true},
	"new_password":     {Label: "New password", Type: "password", Autocomplete: "new-password", Required: true, hint: passwordHint},
	"current_password": {Label: "Current password", Type: "password", Autocomplete: "current-password", Required: true},
	"new_email":        {Label: "New email address", Type: "email", Autocomplete: "email", Required: true},
	"username":         {Label: "Username (optional)", Type: "text", Autocomplete: "username"},
	"first_name":       {Label: "First name (optional)", Type: "text", Autocomplete: "given-name"},
	"last_name":        {Label: "Last name (optional)", Type: "text", Autocomplete: "family-name"},
	"delete_password": {Label: "Password", Type: "password", Autocomplete: "current-password", Required: true,
		hint: func(*view) string { return "Enter it to confirm." }},
}

func passwordHint(v *view) string {
	return fmt.Sprintf("At least %d characters. A few unrelated words make a good one.", v.passwordMin)
}

// fieldView is one input as the "field" template draws it.
type fieldView struct {
	fieldSpec
	ID, Name, Value, Error, Hint string
	Autofocus                    bool
}

// Field is the input name of the page, with the value to show again and
// its error. The first input with an error gets the focus.
func (v *view) Field(name string) (fieldView, error) {
	spec, ok := fieldSpecs[name]
	if !ok {
		return fieldView{}, fmt.Errorf("pages: no field %q", name)
	}
	f := fieldView{fieldSpec: spec, ID: name, Name: name, Error: v.errors[name]}
	if spec.Type != "password" { // a password is never sent back
		f.Value = v.values[name]
	}
	if spec.hint != nil {
		f.Hint = spec.hint(v)
	}
	if f.Error != "" && !v.focused {
		f.Autofocus, v.focused = true, true
	}
	return f, nil
}

// fieldMessage is what the page says next to a field the Service refused:
// the field's label, then the reason.
func fieldMessage(label, reason string) string {
	label = strings.TrimSuffix(label, " (optional)")
	for _, verb := range []string{"is ", "must ", "contains ", "has "} {
		if strings.HasPrefix(reason, verb) {
			return label + " " + reason + "."
		}
	}
	if reason == "" {
		return label + " is not valid."
	}
	return strings.ToUpper(reason[:1]) + reason[1:] + "."
}
