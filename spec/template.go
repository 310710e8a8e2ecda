package spec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
)

// TemplateFuncs are the functions templates may call. secret returns the
// value of a declared secret; the others help shape it:
//
//	{{ secret "db_password" }}
//	{{ secret "db" | json "/user" }}       JSON pointer or top-level key
//	{{ secret "cert" | base64 }}           {{ secret "b64" | base64decode }}
//	{{ secret "token" | quote }}           a JSON string literal
func TemplateFuncs(lookup func(name string) ([]byte, error)) template.FuncMap {
	return template.FuncMap{
		"secret": func(name string) (string, error) {
			b, err := lookup(name)
			return string(b), err
		},
		"json": func(key, doc string) (string, error) {
			var v any
			if err := json.Unmarshal([]byte(doc), &v); err != nil {
				return "", fmt.Errorf("json %q: the value is not JSON", key)
			}
			if strings.HasPrefix(key, "/") {
				for _, tok := range strings.Split(key[1:], "/") {
					tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
					m, ok := v.(map[string]any)
					if !ok {
						return "", fmt.Errorf("json %q: not an object", key)
					}
					if v, ok = m[tok]; !ok {
						return "", fmt.Errorf("json %q: no such key", key)
					}
				}
			} else {
				m, ok := v.(map[string]any)
				if !ok {
					return "", fmt.Errorf("json %q: not an object", key)
				}
				if v, ok = m[key]; !ok {
					return "", fmt.Errorf("json %q: no such key", key)
				}
			}
			if s, ok := v.(string); ok {
				return s, nil
			}
			b, err := json.Marshal(v)
			return string(b), err
		},
		"base64": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"base64decode": func(s string) (string, error) {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
			if err != nil {
				return "", fmt.Errorf("base64decode: the value is not base64")
			}
			return string(b), nil
		},
		"quote": func(s string) string { b, _ := json.Marshal(s); return string(b) },
		"trim":  strings.TrimSpace,
	}
}

// Render executes a template with lookup supplying secret values. The
// result holds secrets: the caller writes it to tmpfs and clears it.
func Render(t Template, lookup func(name string) ([]byte, error)) ([]byte, error) {
	tp, err := template.New(t.Dest).Option("missingkey=error").Funcs(TemplateFuncs(lookup)).Parse(t.Text)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tp.Execute(&buf, nil); err != nil {
		clear(buf.Bytes())
		return nil, err
	}
	return buf.Bytes(), nil
}
