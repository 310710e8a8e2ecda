package spec

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// canaries are secret values; no error or log line may hold any of them,
// nor their base64 or quoted forms.
var canaries = map[string]string{
	"plain": "canary-plain-7f3a",
	"json":  `{"user":"canary-user-91c2","items":["canary-item-0b7e"],"n":42}`,
	"b64":   base64.StdEncoding.EncodeToString([]byte("canary-b64-d00d")),
	"notjs": "canary-notjson-5e5e",
}

func canaryForms() []string {
	var out []string
	for _, v := range []string{"canary-plain-7f3a", "canary-user-91c2", "canary-item-0b7e", "canary-b64-d00d", "canary-notjson-5e5e"} {
		out = append(out, v, base64.StdEncoding.EncodeToString([]byte(v)))
	}
	return out
}

// brokenTemplates each fail at execution, most by passing a value where a
// key or another kind of argument was expected.
var brokenTemplates = []string{
	`{{ "user" | json (secret "plain") }}`,        // value as the key
	`{{ secret "json" | json (secret "plain") }}`, // value as the key of a JSON document
	`{{ secret "plain" | json "/user" }}`,         // not JSON
	`{{ secret "notjs" | json "user" }}`,
	`{{ secret "json" | json "/nope" }}`,
	`{{ secret "json" | json "/items/7" }}`,
	`{{ secret "json" | json "/user/x" }}`,
	`{{ secret "plain" | base64decode }}`,
	`{{ secret "json" | json "/user" | base64decode }}`,
	`{{ index (secret "plain") 99 }}`,
	`{{ (secret "plain").Field }}`,
	`{{ call (secret "plain") }}`,
	`{{ secret (secret "plain") }}`,
	`{{ secret "json" | json (secret "b64" | base64decode) }}`,
	`{{ slice (secret "plain") 3 1 }}`,
	`{{ printf "%s" (secret "plain") | json "k" }}`,
	`{{ eq (secret "plain") 1 }}`,
	`{{ secret "undeclared" }}`,
}

func TestBrokenTemplatesNeverCarryAValue(t *testing.T) {
	lookup := func(name string) ([]byte, error) {
		v, ok := canaries[name]
		if !ok {
			// the name may itself be a value passed where a name was expected
			return nil, fmt.Errorf("secret %q is not declared", name)
		}
		return []byte(v), nil
	}
	for _, format := range []string{"text", "json"} {
		var logs bytes.Buffer
		var h slog.Handler = slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})
		if format == "json" {
			h = slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})
		}
		log := slog.New(h)
		for i, text := range brokenTemplates {
			_, err := Render(Template{Dest: "t.conf", Source: "t.tmpl", Text: text}, lookup)
			if err == nil {
				t.Errorf("template %d rendered: %s", i, text)
				continue
			}
			for _, lvl := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
				log.Log(nil, lvl, "cannot render a template", "template", "t.conf", "err", err)
			}
			for _, c := range canaryForms() {
				if strings.Contains(err.Error(), c) {
					t.Errorf("template %d (%s): error carries a value: %s", i, text, err)
				}
			}
		}
		for _, c := range canaryForms() {
			if strings.Contains(logs.String(), c) {
				t.Errorf("%s logs carry %s", format, c)
			}
		}
	}
}

// TestJSONHelperAgreesWithRefKeys: the template's json helper and a
// reference's #KEY use one grammar (providers.Extract).
func TestJSONHelperAgreesWithRefKeys(t *testing.T) {
	lookup := func(string) ([]byte, error) { return []byte(canaries["json"]), nil }
	for key, want := range map[string]string{"/items/0": "canary-item-0b7e", "user": "canary-user-91c2", "/n": "42", "items": `["canary-item-0b7e"]`} {
		out, err := Render(Template{Dest: "t", Text: fmt.Sprintf(`{{ secret "json" | json %q }}`, key)}, lookup)
		if err != nil || string(out) != want {
			t.Errorf("json %q: %q, %v; want %q", key, out, err, want)
		}
	}
}
