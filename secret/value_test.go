package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestValueNeverPrints(t *testing.T) {
	const plain = "hunter2-very-secret"
	v := FromString(plain)
	wrapped := struct {
		V  Value
		PV *Value
	}{v, &v}
	var forms []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		forms = append(forms, fmt.Sprintf(verb, v), fmt.Sprintf(verb, wrapped))
	}
	js, _ := json.Marshal(wrapped)
	forms = append(forms, string(js), fmt.Sprint(v), fmt.Sprintln(&v))
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "v", v)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "v", v, "w", wrapped)
	forms = append(forms, logs.String())
	for _, f := range forms {
		if strings.Contains(f, plain) || strings.Contains(f, fmt.Sprintf("%x", plain)) {
			t.Fatalf("value leaked in %q", f)
		}
	}
	if string(v.Reveal()) != plain || v.Len() != len(plain) {
		t.Fatal("Reveal must return the bytes")
	}
}

func TestWipe(t *testing.T) {
	b := []byte("abc")
	v := New(b)
	v.Wipe()
	if !bytes.Equal(b, []byte{0, 0, 0}) {
		t.Fatalf("not wiped: %v", b)
	}
}
