package spec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/secretbroker/secretbroker/providers"
)

// TemplateFuncs are the functions templates may call. secret returns the
// value of a declared secret; the others help shape it:
//
//	{{ secret "db_password" }}
//	{{ secret "db" | json "/user" }}       a #KEY of the reference grammar: JSON pointer or top-level key
//	{{ secret "cert" | base64 }}           {{ secret "b64" | base64decode }}
//	{{ secret "token" | quote }}           a JSON string literal
//
// Their errors never quote a value: json names a key only (and Render
// redacts whatever a helper saw, in case a value was passed as a key).
func TemplateFuncs(lookup func(name string) ([]byte, error)) template.FuncMap {
	return templateFuncs(lookup, func(string) {})
}

func templateFuncs(lookup func(name string) ([]byte, error), saw func(string)) template.FuncMap {
	return template.FuncMap{
		"secret": func(name string) (string, error) {
			b, err := lookup(name)
			saw(string(b))
			return string(b), err
		},
		"json": func(key, doc string) (string, error) {
			saw(key)
			saw(doc)
			var v any
			if err := json.Unmarshal([]byte(doc), &v); err != nil {
				return "", fmt.Errorf("json: the value is not JSON")
			}
			ref := providers.Ref{Key: key, HasKey: true}
			out, err := providers.Extract(ref, v)
			if err != nil {
				what := "no such key"
				if providers.KindOf(err) != providers.KindNotFound {
					what = "cannot take this key from the value"
				}
				return "", fmt.Errorf("json %q: %s", key, what)
			}
			r := string(out.Reveal())
			out.Wipe()
			saw(r)
			return r, nil
		},
		"base64": func(s string) string {
			saw(s)
			r := base64.StdEncoding.EncodeToString([]byte(s))
			saw(r)
			return r
		},
		"base64decode": func(s string) (string, error) {
			saw(s)
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
			if err != nil {
				return "", fmt.Errorf("base64decode: the value is not base64")
			}
			saw(string(b))
			return string(b), nil
		},
		"quote": func(s string) string { saw(s); b, _ := json.Marshal(s); saw(string(b)); return string(b) },
		"trim":  func(s string) string { saw(s); r := strings.TrimSpace(s); saw(r); return r },
	}
}

// Render executes a template with lookup supplying secret values. The
// result holds secrets: the caller writes it to tmpfs and clears it. An
// error never carries a value: every string a helper received or returned
// is redacted from the message (text/template's own messages can quote
// the arguments of a failed call).
func Render(t Template, lookup func(name string) ([]byte, error)) ([]byte, error) {
	var seen []string
	saw := func(v string) {
		if v != "" {
			seen = append(seen, v)
		}
	}
	tp, err := template.New(t.Dest).Option("missingkey=error").Funcs(templateFuncs(lookup, saw)).Parse(t.Text)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tp.Execute(&buf, nil); err != nil {
		clear(buf.Bytes())
		// A string the template itself spells (a key) is no secret.
		seen = slices.DeleteFunc(seen, func(v string) bool { return strings.Contains(t.Text, strconv.Quote(v)) })
		// The template's own name is no secret either, even when a value
		// happens to be part of it.
		const name = "\x00dest\x00"
		msg := redact(strings.ReplaceAll(err.Error(), t.Dest, name), seen)
		return nil, errors.New(strings.ReplaceAll(msg, name, t.Dest))
	}
	return buf.Bytes(), nil
}

// redact replaces each of values in msg, longest first, and their quoted
// forms.
func redact(msg string, values []string) string {
	sort.Slice(values, func(i, j int) bool { return len(values[i]) > len(values[j]) })
	for _, v := range values {
		for _, form := range []string{strconv.Quote(v), v} {
			msg = strings.ReplaceAll(msg, form, "[value withheld]")
		}
	}
	return msg
}
