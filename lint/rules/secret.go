package rules

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Secret holds a matched value. Its printed and JSON forms are "[redacted]" so
// that a finding can be logged, formatted or marshalled without leaking the
// value; only Reveal and Preview expose any of it.
type Secret []byte

// String implements fmt.Stringer and never prints the value.
func (Secret) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer and never prints the value.
func (Secret) GoString() string { return "[redacted]" }

// Format makes every verb (%v, %s, %q, %x, %+v, ...) print "[redacted]".
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// MarshalJSON encodes the secret as the string "[redacted]".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// Reveal returns the raw bytes; callers must not print them.
func (s Secret) Reveal() []byte { return s }

// Preview is the only partial disclosure the reports allow: the first four
// characters and the length, e.g. "ghp_…(40)". Values shorter than 12 bytes
// show no characters at all, since four of eight would be half the secret.
func (s Secret) Preview() string {
	n := len(s)
	if n < 12 {
		return "…(" + strconv.Itoa(n) + ")"
	}
	p := s[:4]
	for !utf8.Valid(p) && len(p) > 0 {
		p = p[:len(p)-1]
	}
	out := make([]byte, 0, 16)
	for _, c := range string(p) {
		if c < 0x20 || c == 0x7f {
			c = '.'
		}
		out = utf8.AppendRune(out, c)
	}
	return string(out) + "…(" + strconv.Itoa(n) + ")"
}
