package rules

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
)

// Match is one rule hit inside a stream.
type Match struct {
	Rule   *Rule
	Secret Secret
	Offset int64 // byte offset of the secret in the stream
	Line   int   // 1-based line of the secret
	Note   string
	// Example says the value is a documented example (under example: in
	// an OpenAPI/Swagger document).
	Example bool
	// Encoding is the encoding the secret was decoded from ("base64",
	// "hex", "UTF-16"; the outermost when nested), "" when it was plain.
	Encoding string
}

// Engine runs all rules over streams. Build one with Default; it is safe for
// concurrent use, and each goroutine takes its own Scanner.
type Engine struct {
	rules     []*Rule
	ac        *automaton
	pats      []string  // the automaton's patterns, by id
	byPattern [][]*Rule // AC pattern id -> rules with that keyword
	fileRules []*Rule   // rules restricted to file names
	files     fileIndex // the same, indexed by name
	maxKW     int       // longest automaton pattern, encoded spellings included
	// encoded[id] lists the encodings an AC pattern is a spelling of an
	// anchor in (see encoded.go); nil for plain keywords.
	encoded [][]encodedPattern
}

var (
	engineOnce sync.Once
	engine     *Engine
	engineErr  error
)

// Default returns the engine for the embedded rules, built on first use.
func Default() (*Engine, error) {
	engineOnce.Do(func() {
		rs, err := All()
		if err != nil {
			engineErr = err
			return
		}
		engine, engineErr = New(rs)
	})
	return engine, engineErr
}

// New builds an engine over rs. Keywords are matched in three spellings
// (lower, UPPER, Title) rather than by folding case over every input byte,
// which would cost a pass over gigabytes of layer data.
func New(rs []*Rule) (*Engine, error) {
	e := &Engine{rules: rs}
	index := map[string]int{}
	var pats []string
	// intern returns the automaton pattern id of v, adding it if new.
	intern := func(v string) int {
		id, ok := index[v]
		if !ok {
			id = len(pats)
			index[v] = id
			pats = append(pats, v)
			e.byPattern = append(e.byPattern, nil)
			e.encoded = append(e.encoded, nil)
		}
		return id
	}
	for i, r := range rs {
		r.idx = i
		if len(r.Files) > 0 {
			// Path-restricted rules read their (small) files whole; their
			// keywords (":" in .pgpass, "@" in .git-credentials) would only
			// slow the prefilter down everywhere else.
			e.fileRules = append(e.fileRules, r)
			continue
		}
		for _, kw := range r.Keywords {
			for _, v := range spellings(kw) {
				id := intern(v)
				if !containsRule(e.byPattern[id], r) {
					e.byPattern[id] = append(e.byPattern[id], r)
				}
			}
		}
	}
	if len(pats) == 0 {
		return nil, errors.New("rules: no keywords")
	}
	for _, a := range encodedAnchors(rs) {
		ps, info := encodedSpellings(a)
		for i, v := range ps {
			id := intern(v)
			e.encoded[id] = append(e.encoded[id], info[i])
		}
	}
	for _, v := range pats {
		e.maxKW = max(e.maxKW, len(v))
	}
	e.files = newFileIndex(e.fileRules)
	e.pats = pats
	ac, err := newAutomaton(pats)
	if err != nil {
		return nil, err
	}
	e.ac = ac
	return e, nil
}

func containsRule(rs []*Rule, r *Rule) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// spellings returns the keyword as written and, when it is all lower case,
// its UPPER and Title forms ("password", "PASSWORD", "Password"). Keywords
// with capitals ("AKIA", "SK") are case-sensitive token prefixes.
func spellings(kw string) []string {
	out := []string{kw}
	if kw == strings.ToLower(kw) && kw != "" {
		out = append(out, strings.ToUpper(kw), strings.ToUpper(kw[:1])+kw[1:])
	}
	seen := map[string]bool{}
	var u []string
	for _, s := range out {
		if !seen[s] {
			seen[s] = true
			u = append(u, s)
		}
	}
	return u
}

// Rules returns the engine's rules.
func (e *Engine) Rules() []*Rule { return e.rules }

// FileRules returns the rules that flag name by its name alone (and magic
// bytes, checked by the caller with MagicMatches).
func (e *Engine) FileRules(name string) []*Rule {
	return e.files.match(name, true)
}

// PathRules returns the content rules restricted to files like name.
func (e *Engine) PathRules(name string) []*Rule {
	return e.files.match(name, false)
}

// MagicMatches reports whether head starts with the rule's magic bytes.
func (r *Rule) MagicMatches(head []byte) bool {
	if r.Magic == "" {
		return true
	}
	m, err := hex.DecodeString(r.Magic)
	return err == nil && bytes.HasPrefix(head, m)
}

const (
	chunkSize = 1 << 20
	// lookBehind and lookAhead bound the window a regex sees around a
	// keyword, so that a match across a chunk boundary is still whole. A PEM
	// block must fit in lookAhead.
	lookBehind = 1 << 10
	lookAhead  = 64 << 10
	// fileRuleLimit bounds how much of a file path-restricted rules read
	// (credential files are small).
	fileRuleLimit = 1 << 20
)

// Scanner scans one stream at a time with reusable buffers: memory stays
// at about chunkSize+lookAhead whatever the file size.
type Scanner struct {
	e    *Engine
	buf  []byte
	seen map[seenKey]bool
	// covered[i] is the buffer index up to which rule i's regex already ran
	// in this chunk: a second keyword hit inside that window adds nothing.
	covered []int
	// catalogue and apiDoc describe the stream being scanned: a message
	// catalogue (*_xx[_YY].properties), an OpenAPI/Swagger document.
	catalogue, apiDoc bool
	// depth is how many encodings deep this scanner reads (0 for a file);
	// sub scans the decoded blocks, dec holds them, and encDone is the
	// stream offset up to which each encoding's blocks are decoded.
	depth   int
	sub     *Scanner
	dec     []byte
	encDone [encUTF16 + 1]int64
	// hits holds the keyword hits of the current chunk.
	hits []acMatch
}

type seenKey struct {
	r   *Rule
	off int64
}

// NewScanner returns a scanner for one goroutine.
func (e *Engine) NewScanner() *Scanner {
	return &Scanner{e: e, buf: make([]byte, 0, chunkSize+lookAhead+lookBehind), seen: map[seenKey]bool{}, covered: make([]int, len(e.rules))}
}

// Scan reads r to the end and calls emit for every match. name selects
// path-restricted rules. Only read errors are returned.
func (s *Scanner) Scan(r io.Reader, name string, emit func(Match)) error {
	clear(s.seen)
	pathRules := s.e.files.match(name, false)
	s.catalogue, s.apiDoc = IsMessageCatalogue(name), false
	s.encDone = [encUTF16 + 1]int64{}
	buf := s.buf[:0]
	var base int64 // stream offset of buf[0]
	var done int64 // stream offset up to which keyword hits are handled
	lines := 1     // line number at buf[0]
	// scanFrom is where the automaton starts in buf: the bytes before it
	// (the kept look-behind and look-ahead of the previous chunk) were
	// searched already, and a keyword starting there was handled then.
	scanFrom := 0
	eof := false
	for !eof {
		// Fill the buffer.
		for empty := 0; len(buf) < cap(buf); {
			n, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if n == 0 && err == nil {
				if empty++; empty > 100 {
					s.buf = buf[:0]
					return io.ErrNoProgress
				}
			}
			if err == io.EOF {
				eof = true
				break
			}
			if err != nil {
				s.buf = buf[:0]
				return err
			}
		}
		cut := len(buf)
		if !eof {
			cut = len(buf) - lookAhead
		}
		if base == 0 {
			s.apiDoc = isAPIDoc(name, buf[:min(len(buf), 4096)])
		}
		if base == 0 && len(pathRules) > 0 {
			s.runPathRules(pathRules, buf[:min(len(buf), fileRuleLimit)], lines, emit)
		}
		for i := range s.covered {
			s.covered[i] = -1
		}
		// A keyword that starts before cut ends before cut+maxKW.
		s.hits = s.e.ac.findAll(s.hits[:0], buf[scanFrom:min(len(buf), cut+s.e.maxKW)])
		for _, m := range s.hits {
			m.Start += scanFrom
			m.End += scanFrom
			abs := base + int64(m.Start)
			if abs < done || m.Start >= cut {
				continue
			}
			// Stay on the keyword's line (a regex never needs the
			// previous line).
			lineLo := max(0, m.Start-lookBehind)
			if nl := bytes.LastIndexByte(buf[lineLo:m.Start], '\n'); nl >= 0 {
				lineLo += nl + 1
			}
			if enc := s.e.encoded[m.PatternID]; enc != nil && s.depth < maxDecodeDepth {
				for _, p := range enc {
					if abs >= s.encDone[p.enc] {
						s.encDone[p.enc] = s.scanEncoded(p, buf, m.Start, base, lines, name, emit)
					}
				}
			}
			hi := min(len(buf), m.End+lookAhead)
			for _, ru := range s.e.byPattern[m.PatternID] {
				if pc := prechecks[ru.Precheck]; pc != nil && !pc(buf, m.Start, m.End) {
					continue
				}
				if ru.anchored != nil {
					s.runAnchored(ru, buf, m.Start, lineEnd(buf, m.End), base, lines, emit)
					continue
				}
				if m.End <= s.covered[ru.idx] {
					continue
				}
				whi := hi
				if !ru.Multiline {
					// A single-line rule: stop at the line end, at most 4 KiB on.
					lim := min(len(buf), m.End+4096)
					if nl := bytes.IndexByte(buf[m.End:lim], '\n'); nl >= 0 {
						whi = m.End + nl
					} else {
						whi = lim
					}
				}
				lo := max(lineLo, m.Start-ru.Behind)
				s.covered[ru.idx] = whi
				s.runRegex(ru, buf, lo, whi, base, lines, emit)
			}
		}
		done = base + int64(cut)
		// Keep lookBehind bytes before cut plus the unhandled tail.
		keep := max(0, cut-lookBehind)
		lines += bytes.Count(buf[:keep], []byte{'\n'})
		n := copy(buf, buf[keep:])
		buf = buf[:n]
		base += int64(keep)
		scanFrom = cut - keep
		if eof {
			break
		}
	}
	s.buf = buf[:0]
	return nil
}

// runPathRules runs the rules of a credential file (.npmrc, .env, ...). A
// rule with keywords runs only on the lines that hold one (found in a
// lower-cased copy); one without runs on the whole head of the file.
func (s *Scanner) runPathRules(rs []*Rule, head []byte, lines int, emit func(Match)) {
	var lower []byte
	for _, ru := range rs {
		if len(ru.Keywords) == 0 {
			s.runRegex(ru, head, 0, len(head), 0, lines, emit)
			continue
		}
		if lower == nil {
			lower = bytes.ToLower(head)
		}
		ran := map[int]bool{} // line starts already run
		for _, kw := range ru.Keywords {
			kw := []byte(strings.ToLower(kw))
			for from := 0; ; {
				i := bytes.Index(lower[from:], kw)
				if i < 0 {
					break
				}
				i += from
				lo := bytes.LastIndexByte(head[:i], '\n') + 1
				hi := lineEnd(head, i)
				if ru.Multiline {
					hi = min(len(head), i+lookAhead)
				}
				if !ran[lo] {
					ran[lo] = true
					s.runRegex(ru, head, lo, hi, 0, lines, emit)
				}
				from = i + len(kw)
			}
		}
	}
}

func lineEnd(buf []byte, from int) int {
	lim := min(len(buf), from+4096)
	if nl := bytes.IndexByte(buf[from:lim], '\n'); nl >= 0 {
		return from + nl
	}
	return lim
}

// runAnchored tries an Anchor rule at the keyword only.
func (s *Scanner) runAnchored(ru *Rule, buf []byte, at, hi int, base int64, lines int, emit func(Match)) {
	loc := ru.anchored.FindSubmatchIndex(buf[at:hi])
	if loc == nil {
		return
	}
	a, b := loc[2*ru.group], loc[2*ru.group+1]
	if a < 0 {
		return
	}
	s.accept(ru, buf, at+a, at+b, base, lines, emit)
}

// runRegex applies ru to buf[lo:hi]; buf starts at stream offset base and
// at line number lines.
func (s *Scanner) runRegex(ru *Rule, buf []byte, lo, hi int, base int64, lines int, emit func(Match)) {
	win := buf[lo:hi]
	for _, loc := range ru.re.FindAllSubmatchIndex(win, -1) {
		a, b := loc[2*ru.group], loc[2*ru.group+1]
		if a < 0 {
			continue
		}
		s.accept(ru, buf, lo+a, lo+b, base, lines, emit)
	}
}

// accept checks the value at buf[a:b] and emits it once.
func (s *Scanner) accept(ru *Rule, buf []byte, a, b int, base int64, lines int, emit func(Match)) {
	off := base + int64(a)
	k := seenKey{ru, off}
	if s.seen[k] {
		return
	}
	s.seen[k] = true
	if ru.ByName && (s.catalogue || NotAValue(buf, a, b) != "") {
		return
	}
	val := buf[a:b]
	ok, note := Check(ru, val)
	if !ok {
		return
	}
	line := lines + bytes.Count(buf[:a], []byte{'\n'})
	m := Match{Rule: ru, Secret: Secret(bytes.Clone(val)), Offset: off, Line: line, Note: note}
	if s.apiDoc && underExample(buf, a) {
		m.Example = true
		m.Note = joinNotes(m.Note, "documented example in an API document")
	}
	emit(m)
}

// Check applies a rule's value filters: published examples, placeholders,
// entropy and the format validator.
func Check(ru *Rule, val []byte) (bool, string) {
	if IsPublishedExample(val) || ContainsPublishedExample(val) {
		return false, ""
	}
	if !ru.NoPlaceholderCheck && IsPlaceholder(val) {
		return false, ""
	}
	if d, ok := decodeUnicodeEscapes(val); ok {
		// \uXXXX escapes are text: natural language (a translated
		// "password") is no secret, and the entropy is the text's.
		if naturalLanguage(d) {
			return false, ""
		}
		val = d
	}
	if ru.Entropy > 0 && Entropy(val) < ru.Entropy {
		return false, ""
	}
	ok, note := true, ""
	if ru.Validate != "" {
		ok, note = validators[ru.Validate](val)
	}
	return ok, note
}

// CheckFile decides a file-only rule (a keystore, a key file) from the
// file's first bytes: magic, placeholder, validator.
func CheckFile(ru *Rule, head []byte) (bool, string) {
	if !ru.MagicMatches(head) || emptyOrPlaceholder(head) {
		return false, ""
	}
	if ru.Validate != "" {
		return validators[ru.Validate](head)
	}
	return true, ""
}

// ScanBytes is Scan over an in-memory value (config fields, history lines).
func (s *Scanner) ScanBytes(b []byte, name string) []Match {
	var out []Match
	_ = s.Scan(bytes.NewReader(b), name, func(m Match) { out = append(out, m) })
	return out
}

// emptyOrPlaceholder reports whether a file named like a key holds nothing
// that could be one: no bytes, blanks only, or a short stand-in ("dummy",
// "changeme", "TODO").
func emptyOrPlaceholder(head []byte) bool {
	t := bytes.TrimSpace(head)
	if len(t) == 0 {
		return true
	}
	return len(t) < 64 && !bytes.ContainsAny(t, "\x00") && IsPlaceholder(t)
}
