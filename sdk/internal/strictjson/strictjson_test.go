package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/jotguard/jotguard/sdk/internal/strictjson"
)

var rules = strictjson.NewRules([]string{"sub", "aud"}, "exp", "iat")

func TestCheck(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"plain", `{"sub":"a","exp":1,"aud":["x","y"]}`, true},
		{"whitespace and nesting", ` { "sub" : "a" , "x" : { "y" : [ 1 , { "z" : null } ] } , "exp" : -1.5e3 } `, true},
		{"empty", `{}`, true},
		{"escaped quote in a value", `{"sub":"a\"b","exp":1}`, true},
		{"same name in different objects", `{"x":{"a":1},"y":{"a":1},"a":1}`, true},
		{"not an object", `["sub"]`, false},
		{"duplicate", `{"sub":"a","sub":"b"}`, false},
		{"duplicate through an escape", `{"sub":"a","s\u0075b":"b"}`, false},
		{"duplicate nested", `{"x":[{"a":1,"a":2}]}`, false},
		{"case variant", `{"Sub":"a"}`, false},
		{"case variant nested", `{"x":{"AUD":1}}`, false},
		{"Kelvin sign is not k", `{"\u212a":1}`, true},
		{"long s folds to s", `{"\u017fub":"a"}`, false},
		{"exp a string", `{"exp":"1"}`, false},
		{"iat null", `{"iat":null}`, false},
		{"exp a string nested is not a NumericDate", `{"x":{"exp":"1"}}`, true},
		{"unterminated", `{"sub":"a`, false},
		{"too deep", `{"a":` + deep(40) + `}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := strictjson.Check([]byte(tt.in), rules)
			if (err == nil) != tt.ok {
				t.Fatalf("Check(%s) = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil && !errors.Is(err, strictjson.ErrAmbiguous) {
				t.Fatalf("Check error %v does not wrap ErrAmbiguous", err)
			}
		})
	}
}

func deep(n int) string {
	s := "1"
	for range n {
		s = "[" + s + "]"
	}
	return s
}

// FuzzCheck: Check never panics, and whatever it accepts that is valid JSON
// has no duplicate member at the top level.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"sub":"a","exp":1}`, `{"a":{"b":[1,2,{"c":"d"}]}}`, `{"s\u0075b":1}`, `{`, `{"exp":"1"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if strictjson.Check(b, rules) != nil {
			return
		}
		dec := json.NewDecoder(bytesReader(b))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return
			}
			name, _ := tok.(string)
			if seen[name] {
				t.Fatalf("Check accepted %q with %q twice", b, name)
			}
			seen[name] = true
			var v json.RawMessage
			if dec.Decode(&v) != nil {
				return
			}
		}
	})
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
