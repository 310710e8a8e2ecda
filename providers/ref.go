// Package providers turns secret references into secret values.
//
// A reference (vault://secret/app#db) is parsed into a Ref; Resolve dedupes a
// set of Refs, groups them by scheme and hands each group to that scheme's
// Provider in one call, so a provider can batch (one Vault read per path, one
// AWS BatchGetSecretValue per 20 secrets). Sub-packages implement the
// providers; this package knows none of them.
package providers

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Ref is a parsed secret reference:
//
//	SCHEME "://" PATH [ "?" PARAMS ] [ "#" KEY ]
//
// Path, Params values and Key hold unescaped text (%XX decoded).
type Ref struct {
	Raw    string            // as the user wrote it; error messages quote this
	Scheme string            // a registered scheme
	Path   string            // cleaned: no empty, "." or ".." segments, no trailing "/"
	Params map[string]string // only the parameters the scheme knows
	Key    string            // top-level key, or a JSON pointer when it starts with "/"
	HasKey bool              // a "#KEY" part was given
}

// Schemes lists the schemes ParseRef accepts (those built in), sorted.
func Schemes() []string { return Registered() }

// KnownScheme reports whether s is a scheme ParseRef accepts.
func KnownScheme(s string) bool { _, ok := registry[s]; return ok }

// RefError is a malformed reference. Pos is the byte offset in Ref where the
// problem was found, or -1.
type RefError struct {
	Ref  string
	Pos  int
	Msg  string
	Hint string
}

func (e *RefError) Error() string {
	s := fmt.Sprintf("invalid reference %q: %s", e.Ref, e.Msg)
	if e.Pos >= 0 {
		s += fmt.Sprintf(" (at byte %d)", e.Pos)
	}
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

// ParseRef parses and validates a reference against the grammar of
// docs/reference.md ("References") and the rules of its scheme (its
// Registration.Syntax).
func ParseRef(raw string) (Ref, error) {
	r := Ref{Raw: raw}
	fail := func(pos int, format string, args ...any) (Ref, error) {
		return Ref{}, &RefError{Ref: raw, Pos: pos, Msg: fmt.Sprintf(format, args...)}
	}
	i := strings.Index(raw, "://")
	if i <= 0 {
		return fail(-1, "want SCHEME://PATH, e.g. vault://secret/app#password")
	}
	r.Scheme = raw[:i]
	reg, ok := registry[r.Scheme]
	sc := reg.Syntax
	if !ok {
		return fail(0, "unknown scheme %q (known: %s)", r.Scheme, strings.Join(Schemes(), ", "))
	}
	rest := raw[i+3:]
	off := i + 3

	// URL order: PATH, then ?PARAMS, then #KEY.
	pathEnd := strings.IndexAny(rest, "?#")
	if pathEnd < 0 {
		pathEnd = len(rest)
	}
	rawPath := rest[:pathEnd]
	var rawParams, rawKey string
	var hasParams bool
	tail := rest[pathEnd:]
	if strings.HasPrefix(tail, "?") {
		hasParams = true
		if h := strings.IndexByte(tail, '#'); h >= 0 {
			rawParams, tail = tail[1:h], tail[h:]
		} else {
			rawParams, tail = tail[1:], ""
		}
	}
	if strings.HasPrefix(tail, "#") {
		r.HasKey = true
		rawKey = tail[1:]
	}

	if rawPath == "" {
		return fail(off, "empty path")
	}
	path, err := unescape(rawPath)
	if err != nil {
		return fail(off+err.pos, "%s", err.msg)
	}
	// Segments are checked on the decoded path: "%2e%2e" is "..", and an
	// HTTP client or the kernel would clean it away after the policy had
	// matched the spelling with the dots.
	if e := checkSegments(raw, off, rawPath); e != nil {
		return Ref{}, e
	}
	r.Path = strings.TrimSuffix(path, "/")
	if sc.TrimLead {
		// The provider requests the path without its leading "/"; the
		// policy must match what is requested.
		r.Path = strings.TrimPrefix(r.Path, "/")
		if r.Path == "" {
			return fail(off, "empty path")
		}
	}
	if r.Path == "" {
		r.Path = "/"
	}

	if hasParams {
		poff := off + pathEnd + 1
		if rawParams == "" {
			return fail(poff-1, "empty parameter list after ?")
		}
		r.Params = map[string]string{}
		for _, kv := range strings.Split(rawParams, "&") {
			name, val, ok := strings.Cut(kv, "=")
			if !ok || name == "" || val == "" {
				return fail(poff, "parameter %q is not NAME=VALUE", kv)
			}
			if !contains(sc.Params, name) {
				known := "none"
				if len(sc.Params) > 0 {
					known = strings.Join(sc.Params, ", ")
				}
				return fail(poff, "unknown parameter %q for %s:// (known: %s)", name, r.Scheme, known)
			}
			if _, dup := r.Params[name]; dup {
				return fail(poff, "parameter %q given twice", name)
			}
			v, uerr := unescape(val)
			if uerr != nil {
				return fail(poff+len(name)+1+uerr.pos, "%s", uerr.msg)
			}
			r.Params[name] = v
			poff += len(kv) + 1
		}
	}

	if r.HasKey {
		koff := len(raw) - len(rawKey)
		if !sc.Key {
			return fail(koff-1, "%s:// references take no #KEY", r.Scheme)
		}
		if rawKey == "" {
			return fail(koff-1, "empty key after #")
		}
		// vault://p#key?version=2 is almost always a mistake in order.
		if q := strings.IndexByte(rawKey, '?'); q >= 0 {
			if name, _, ok := strings.Cut(rawKey[q+1:], "="); ok && contains(sc.Params, name) {
				return Ref{}, &RefError{Ref: raw, Pos: koff + q, Msg: fmt.Sprintf("parameter %q inside #KEY", name), Hint: "put ?params before #key"}
			}
		}
		k, uerr := unescape(rawKey)
		if uerr != nil {
			return fail(koff+uerr.pos, "%s", uerr.msg)
		}
		if strings.HasPrefix(k, "/") {
			if perr := checkPointer(k); perr != "" {
				return fail(koff, "%s", perr)
			}
		}
		r.Key = k
	}
	if sc.Check != nil {
		if e := sc.Check(&r); e != nil {
			e.Ref = raw
			return Ref{}, e
		}
	}
	return r, nil
}

// Canonical prints the reference back in its one canonical spelling: path
// cleaned, parameters sorted, 1Password names lower-cased. Policy matching,
// dedupe and logs use it.
func (r Ref) Canonical() string {
	if len(r.Params) == 0 {
		// The common case in one allocation: a broker computes this for
		// every reference on every cycle.
		if !r.HasKey {
			return r.Target()
		}
		return r.Scheme + "://" + escape(r.canonicalPath()) + "#" + escape(r.Key)
	}
	var b strings.Builder
	b.WriteString(r.Target())
	if len(r.Params) > 0 {
		names := make([]string, 0, len(r.Params))
		for n := range r.Params {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			if i == 0 {
				b.WriteByte('?')
			} else {
				b.WriteByte('&')
			}
			b.WriteString(n + "=" + escape(r.Params[n]))
		}
	}
	if r.HasKey {
		b.WriteString("#" + escape(r.Key))
	}
	return b.String()
}

// Target is SCHEME://PATH of the canonical form: what policy patterns match,
// since grants are per secret, not per key or version.
func (r Ref) Target() string {
	return r.Scheme + "://" + escape(r.canonicalPath())
}

// canonicalPath is the path as the canonical form spells it (1Password's
// lower-cased), before escaping.
func (r Ref) canonicalPath() string {
	if registry[r.Scheme].Syntax.Lower {
		return strings.ToLower(r.Path)
	}
	return r.Path
}

// PatternPath puts the path of a policy pattern for scheme in the form
// identities of that scheme have (1Password's lower-cased, Vault's without
// a leading "/"), so policy needs no scheme of its own. local reports that
// the scheme's identities are absolute real file paths, which the caller
// resolves against the policy's directory.
func PatternPath(scheme, path string) (out string, local bool) {
	sc := registry[scheme].Syntax
	if sc.Lower {
		path = strings.ToLower(path)
	}
	if sc.TrimLead {
		path = strings.TrimPrefix(path, "/")
	}
	return path, sc.Local
}

// PatternRegexp compiles the path of a policy pattern for scheme to an
// unanchored regular expression over what follows SCHEME:// in an
// identity: the scheme's own Registration.Pattern, or Glob of the path in
// the form PatternPath gives it. local is PatternPath's: the caller first
// resolves such a path against the policy's directory (resolve) and the
// result is globbed.
func PatternRegexp(scheme, path string, deny bool, resolve func(string) string) (string, error) {
	r := registry[scheme]
	if r.Pattern != nil {
		return r.Pattern(path, deny)
	}
	if strings.ContainsAny(path, "?#") {
		return "", fmt.Errorf("patterns match SCHEME://PATH; a grant is per secret, not per key or version")
	}
	path, local := PatternPath(scheme, path)
	if local && resolve != nil {
		path = resolve(path)
	}
	return Glob(path), nil
}

// Glob is the regular expression (unanchored, quoted) for a policy
// pattern's path: "*" is one path segment (no "/"), "**" any depth.
func Glob(path string) string { return GlobExcept(path, "") }

// GlobExcept is Glob for a scheme whose identities carry more after the
// path: neither "*" nor "**" matches a byte of stop (ASCII), which starts
// that part.
func GlobExcept(path, stop string) string {
	one, any := "[^/"+regexp.QuoteMeta(stop)+"]*", "[^"+regexp.QuoteMeta(stop)+"]*"
	if stop == "" {
		any = ".*"
	}
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		switch {
		case strings.HasPrefix(path[i:], "**"):
			b.WriteString(any)
			i++
		case path[i] == '*':
			b.WriteString(one)
		default:
			b.WriteString(regexp.QuoteMeta(path[i : i+1]))
		}
	}
	return b.String()
}

// String is the reference as the user wrote it.
func (r Ref) String() string { return r.Raw }

// Param returns a parameter's value, or "".
func (r Ref) Param(name string) string { return r.Params[name] }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkSegments rejects "//", "." and ".." in the decoded path, and
// control characters, pointing at the byte of rawPath where the offending
// segment starts. A leading "/" is an absolute path and fine; one trailing
// "/" is cleaned away. A %XX escape is decoded first, so "%2e%2e" is "..",
// and "%2F" separates segments as "/" does.
func checkSegments(raw string, off int, rawPath string) *RefError {
	type seg struct {
		text string
		pos  int // raw offset of its first byte
	}
	var segs []seg
	var cur strings.Builder
	start := 0
	for i := 0; i < len(rawPath); i++ {
		c, at := rawPath[i], i
		if c == '%' && i+2 < len(rawPath) {
			if n, err := strconv.ParseUint(rawPath[i+1:i+3], 16, 8); err == nil {
				c = byte(n)
				i += 2
			}
		}
		if c < 0x20 || c == 0x7f {
			return &RefError{Ref: raw, Pos: off + at, Msg: "control character in path"}
		}
		if c == '/' {
			segs = append(segs, seg{cur.String(), off + start})
			cur.Reset()
			start = i + 1
			continue
		}
		cur.WriteByte(c)
	}
	segs = append(segs, seg{cur.String(), off + start})
	// A leading "/" gives an empty first segment; one trailing "/" an
	// empty last one. Both are allowed (once).
	if len(segs) > 1 && segs[0].text == "" {
		segs = segs[1:]
	}
	if len(segs) > 1 && segs[len(segs)-1].text == "" {
		segs = segs[:len(segs)-1]
	}
	for _, s := range segs {
		switch s.text {
		case "":
			if len(segs) > 1 || len(rawPath) > 1 {
				return &RefError{Ref: raw, Pos: s.pos, Msg: `empty path segment ("//")`}
			}
		case ".", "..":
			return &RefError{Ref: raw, Pos: s.pos, Msg: fmt.Sprintf("%q path segment not allowed", s.text)}
		}
	}
	return nil
}

func checkPointer(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 >= len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return "bad JSON pointer: \"~\" must be followed by 0 or 1 (RFC 6901)"
		}
	}
	return ""
}

type escErr struct {
	pos int
	msg string
}

// unescape decodes %XX sequences. Unlike url.PathUnescape it leaves "+"
// alone and reports where a bad escape is.
func unescape(s string) (string, *escErr) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", &escErr{i, "incomplete %XX escape"}
		}
		n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", &escErr{i, fmt.Sprintf("bad escape %q", s[i:i+3])}
		}
		b.WriteByte(byte(n))
		i += 2
	}
	return b.String(), nil
}

// escape is unescape's inverse for the characters that would otherwise be
// read as syntax.
func escape(s string) string {
	if !strings.ContainsAny(s, "%?#&") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%', '?', '#', '&':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
