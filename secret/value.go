// Package secret holds the one type that carries a secret's bytes through the
// program. Every way Go has of printing or encoding a value — fmt verbs,
// %#v, JSON, text marshalling, slog — yields "[redacted]", so a value that
// slips into a log line, an error or a panic message leaks nothing. Only an
// explicit call to Reveal hands out the bytes.
package secret

import (
	"fmt"
	"log/slog"
)

// Redacted is what every printed form of a Value shows.
const Redacted = "[redacted]"

// Value is a secret's bytes. The zero Value is empty.
type Value struct {
	b []byte
}

// New wraps b. The Value keeps b itself (no copy), so the caller should not
// reuse b afterwards.
func New(b []byte) Value { return Value{b: b} }

// FromString wraps a copy of s.
func FromString(s string) Value { return Value{b: []byte(s)} }

// Reveal returns the secret's bytes. Call it only where the bytes must go:
// a file on tmpfs, a template, an explicitly requested environment variable.
func (v Value) Reveal() []byte { return v.b }

// Len is the number of bytes, safe to log.
func (v Value) Len() int { return len(v.b) }

// Wipe overwrites the bytes with zeros. Values share their backing array
// with copies of themselves, so wipe only when no copy is still needed.
func (v Value) Wipe() {
	for i := range v.b {
		v.b[i] = 0
	}
}

func (Value) String() string   { return Redacted }
func (Value) GoString() string { return Redacted }

// Format makes every fmt verb, including %x, %q and %#v, print the redaction.
func (Value) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

func (Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }
func (Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }
func (Value) LogValue() slog.Value         { return slog.StringValue(Redacted) }
