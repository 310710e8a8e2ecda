package rules

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
)

// Encoded key material: a private key or token stored base64-encoded
// (Kubernetes Secret `data:` values, a key pasted into a config as one
// line), hex-encoded, or as UTF-16 text. The plain rules cannot see it, and
// decoding every base64-looking run of a layer would cost a second pass over
// gigabytes. So the keyword prefilter also carries the encoded spellings of
// a few anchors that start a secret ("-----BEGIN ", token prefixes such as
// "ghp_" or "AKIA", "password"): base64 (std and URL alphabets, in each of
// the three byte alignments), hex (both cases) and UTF-16 (LE and BE match
// the same interleaved bytes). Only at such a hit is the block around it
// decoded, bounded in size and depth, and scanned again with every rule.
// Ordinary content, which holds none of these strings, costs nothing more
// than the automaton's pass it already pays.

// encoding is how a block is encoded.
type encoding uint8

const (
	encBase64 encoding = iota + 1
	encHex
	encUTF16
)

func (e encoding) String() string {
	switch e {
	case encBase64:
		return "base64"
	case encHex:
		return "hex"
	}
	return "UTF-16"
}

// encodedPattern is one encoded spelling of an anchor in the automaton.
type encodedPattern struct {
	enc encoding
	// phase is, for base64, the position of the pattern's first character
	// inside its 4-character group (the group boundary is phase characters
	// before the hit); for hex and UTF-16, 0.
	phase int
}

const (
	// maxDecodeDepth is how many encodings deep a block is decoded (base64
	// of a manifest whose values are base64 again is 2).
	maxDecodeDepth = 2
	// encodedWindow bounds the encoded bytes read on each side of a hit: a
	// key is a few KiB, and the decoded block is scanned again in full.
	encodedWindow = 48 << 10
	// minEncodedPattern is the shortest encoded spelling kept: shorter ones
	// hit too often by chance in other base64 data (images in source maps).
	// Four characters keep every alignment of a 4-byte prefix ("ghp_").
	minEncodedPattern = 4
)

// encodedAnchors returns the strings whose encoded spellings the prefilter
// looks for: the start of every PEM block, the case-sensitive token
// prefixes of the rules (4 bytes or more), and the names that precede a
// value in a config file.
func encodedAnchors(rs []*Rule) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	add("-----BEGIN ")
	// A PEM block base64-encoded from its start, inside a document that is
	// itself encoded (a Secret manifest in a Helm release, a kubeconfig in
	// a CI variable): depth 2.
	add("LS0tLS1CRUdJTi")
	add("---- BEGIN SSH2")
	add("PuTTY-User-Key-File")
	for _, w := range []string{"password", "secret", "token"} {
		add(w)
		add(strings.ToUpper(w))
	}
	for _, r := range rs {
		if len(r.Files) > 0 {
			continue
		}
		for _, kw := range r.Keywords {
			if len(kw) < 4 || kw == strings.ToLower(kw) && strings.Trim(kw, "abcdefghijklmnopqrstuvwxyz ") == "" {
				continue // short, or a lower-case word (matched in spellings)
			}
			if strings.Count(kw, kw[:1]) == len(kw) {
				continue // "AAAA" is in every run of zeros
			}
			add(kw)
		}
	}
	return out
}

// encodedSpellings returns the encoded forms of anchor.
func encodedSpellings(anchor string) (pats []string, info []encodedPattern) {
	add := func(p string, e encodedPattern) {
		if len(p) >= minEncodedPattern {
			pats = append(pats, p)
			info = append(info, e)
		}
	}
	n := len(anchor)
	for k := 0; k < 3; k++ {
		// Encode anchor after k filler bytes; keep the characters whose 6
		// bits all come from the anchor.
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, k), anchor...))
		first := (8*k + 5) / 6
		last := (8*(k+n) - 6) / 6
		if last < first {
			continue
		}
		p := enc[first : last+1]
		add(p, encodedPattern{encBase64, first % 4})
		if u := strings.NewReplacer("+", "-", "/", "_").Replace(p); u != p {
			add(u, encodedPattern{encBase64, first % 4})
		}
	}
	h := hex.EncodeToString([]byte(anchor))
	add(h, encodedPattern{encHex, 0})
	if u := strings.ToUpper(h); u != h {
		add(u, encodedPattern{encHex, 0})
	}
	var w []byte
	for i := 0; i < n; i++ {
		if i > 0 {
			w = append(w, 0)
		}
		w = append(w, anchor[i])
	}
	add(string(w), encodedPattern{encUTF16, 0})
	return pats, info
}

func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_'
}

func isHexChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// lineBreakAt reports the length of a line break (with the indentation
// around it) at buf[i:], or 0: encoded blocks are wrapped (PEM-style 64 or
// MIME 76 columns, YAML block scalars).
func lineBreakAt(buf []byte, i, hi int) int {
	j := i
	for j < hi && (buf[j] == ' ' || buf[j] == '\t' || buf[j] == '\r') {
		j++
	}
	if j >= hi || buf[j] != '\n' {
		return 0
	}
	j++
	for j < hi && (buf[j] == ' ' || buf[j] == '\t') {
		j++
	}
	return j - i
}

// lineBreakBefore is lineBreakAt going backwards from buf[:i].
func lineBreakBefore(buf []byte, i, lo int) int {
	j := i
	for j > lo && (buf[j-1] == ' ' || buf[j-1] == '\t') {
		j--
	}
	if j <= lo || buf[j-1] != '\n' {
		return 0
	}
	j--
	for j > lo && (buf[j-1] == ' ' || buf[j-1] == '\t' || buf[j-1] == '\r') {
		j--
	}
	return i - j
}

// decodeAround decodes the block of encoding e that holds the hit at
// buf[at:], reading at most encodedWindow bytes on either side. It returns
// the decoded bytes (appended to dst) and the end of the block in buf.
func decodeAround(dst, buf []byte, at int, p encodedPattern) ([]byte, int) {
	lo, hi := max(0, at-encodedWindow), min(len(buf), at+encodedWindow)
	switch p.enc {
	case encUTF16:
		i := at
		for i-2 >= lo && buf[i-1] == 0 && utf16Char(buf[i-2]) {
			i -= 2
		}
		j := at
		for j+2 < hi && buf[j+1] == 0 && utf16Char(buf[j+2]) {
			j += 2
		}
		for k := i; k <= j; k += 2 {
			dst = append(dst, buf[k])
		}
		return dst, j + 1
	}
	in := isBase64Char
	if p.enc == encHex {
		in = isHexChar
	}
	// Walk back to the start of the block, then forward to its end,
	// collecting the characters without line breaks; hitAt is the hit's
	// position among them.
	start := at
	for start > lo {
		if in(buf[start-1]) {
			start--
			continue
		}
		if n := lineBreakBefore(buf, start, lo); n > 0 && start-n > lo && in(buf[start-n-1]) {
			start -= n
			continue
		}
		break
	}
	var chars []byte
	hitAt := -1
	end := start
	for end < hi {
		if end == at {
			hitAt = len(chars)
		}
		if in(buf[end]) {
			chars = append(chars, buf[end])
			end++
			continue
		}
		if n := lineBreakAt(buf, end, hi); n > 0 && end+n < hi && in(buf[end+n]) {
			end += n
			continue
		}
		break
	}
	if hitAt < 0 {
		return dst, end
	}
	if p.enc == encHex {
		chars = chars[hitAt%2:]
		chars = chars[:len(chars)/2*2]
		out := make([]byte, len(chars)/2)
		if _, err := hex.Decode(out, chars); err != nil {
			return dst, end
		}
		return append(dst, out...), end
	}
	// Cut to the group boundary the hit implies, then to whole groups
	// (a last group of 2 or 3 characters decodes as unpadded).
	skip := ((hitAt-p.phase)%4 + 4) % 4
	chars = chars[skip:]
	if len(chars)%4 == 1 {
		chars = chars[:len(chars)-1]
	}
	for i, c := range chars {
		switch c {
		case '-':
			chars[i] = '+'
		case '_':
			chars[i] = '/'
		}
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(chars)))
	n, err := base64.RawStdEncoding.Decode(out, chars)
	if err != nil {
		return dst, end
	}
	return append(dst, out[:n]...), end
}

// utf16Char reports whether c is an ASCII character of text (keys and
// tokens are ASCII; their UTF-16 form has a zero byte beside each).
func utf16Char(c byte) bool { return c >= 0x20 && c < 0x7f || c == '\n' || c == '\r' || c == '\t' }

// scanEncoded decodes the block around an encoded hit at buf[at:] and scans
// it with every rule; matches are reported at the hit's line, noted with
// the encoding. It returns the stream offset up to which the block is done.
func (s *Scanner) scanEncoded(p encodedPattern, buf []byte, at int, base int64, lines int, name string, emit func(Match)) int64 {
	dec, end := decodeAround(s.dec[:0], buf, at, p)
	s.dec = dec[:0]
	if len(dec) == 0 {
		return base + int64(end)
	}
	if s.sub == nil {
		s.sub = s.e.NewScanner()
		s.sub.depth = s.depth + 1
	}
	line := lines + bytes.Count(buf[:at], []byte{'\n'})
	where := p.enc.String() + " at line " + strconv.Itoa(line)
	off := base + int64(at)
	// The nested scan runs on a copy: the sub-scanner's own decoding
	// reuses s.sub.dec, never dec.
	_ = s.sub.Scan(bytes.NewReader(dec), name, func(m Match) {
		m.Line = line
		m.Offset = off + m.Offset
		m.Note = joinNotes(where, m.Note)
		m.Encoding = p.enc.String()
		emit(m)
	})
	return base + int64(end)
}

// DecodeValue decodes v, a whole value in the named encoding (a Match's
// Encoding), as the encoded-block scan does; nil when it does not decode.
// The scan uses it to see that a value another rule reported (a Kubernetes
// Secret's data: value) is the block a decoded key came from.
func DecodeValue(name string, v []byte) []byte {
	for _, e := range []encoding{encBase64, encHex, encUTF16} {
		if e.String() == name {
			dec, _ := decodeAround(nil, v, 0, encodedPattern{enc: e})
			return dec
		}
	}
	return nil
}
