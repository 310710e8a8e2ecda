// Package scan runs the rule engine over a target: every layer of every
// image (in parallel, each shared layer once), the image config and history,
// and annotations. It also works out, for each finding in a layer, whether
// the file survives into the final filesystem or was deleted or overwritten
// by a later layer (still recoverable from the image).
package scan

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/secretbroker/secretbroker/lint/provenance"
	"github.com/secretbroker/secretbroker/lint/rules"
	"github.com/secretbroker/secretbroker/lint/source"
	"github.com/secretbroker/secretbroker/lint/walk"
)

// Finding is one secret found. Secret is never printed: reports show
// Preview, or nothing at all for known secrets.
type Finding struct {
	RuleID      string         `json:"rule"`
	Description string         `json:"description"`
	Severity    rules.Severity `json:"-"`
	SeverityStr string         `json:"severity"`
	Target      string         `json:"target"`
	Image       string         `json:"image,omitempty"`
	Platforms   []string       `json:"platforms,omitempty"`
	Layer       int            `json:"layer"` // 1-based; 0 for config, history, annotations and files
	LayerDigest string         `json:"layer_digest,omitempty"`
	History     int            `json:"history_step,omitempty"` // 1-based index into the config history
	Path        string         `json:"path"`                   // file path, or config location ("config.Env[2]")
	Line        int            `json:"line,omitempty"`
	Status      string         `json:"status"`
	// Class says how much the finding is worth: ClassSecret, ClassFixture
	// (a test or example location) or ClassShipped (in a file a package
	// manager installed, unmodified). --fail-on picks the failing classes.
	Class       string `json:"class"`
	Note        string `json:"note,omitempty"`
	Preview     string `json:"preview,omitempty"`
	KnownSecret string `json:"known_secret,omitempty"`
	Fix         string `json:"fix,omitempty"`
	Fingerprint string `json:"fingerprint"`
	// Locations lists the other places of the same value in the same
	// image (one value, one finding).
	Locations []string     `json:"other_locations,omitempty"`
	Secret    rules.Secret `json:"-"`
	wholeFile bool         // a file-only rule: Secret is the file's first bytes
	encoding  string       // the encoding Secret was decoded from, "" if plain
}

// Statuses of a finding.
const (
	StatusFinal  = "in final filesystem"
	StatusConfig = "in image config"
	StatusFile   = "in file"
)

// Classes of a finding.
const (
	ClassSecret  = "secret"
	ClassFixture = "fixture"
	ClassShipped = "shipped"
)

// Classes lists the classes, most serious first.
var Classes = []string{ClassSecret, ClassFixture, ClassShipped}

// fixtureDirs are directory names of test and example locations.
var fixtureDirs = map[string]bool{"testdata": true, "test-fixtures": true, "fixtures": true, "fixture": true, "tests": true, "test": true, "__tests__": true, "__fixtures__": true, "spec": true}

// IsFixturePath reports whether p (a path, members of archives after "!")
// is a test or example location: testdata/, test-fixtures/, fixtures/,
// tests/, __tests__/, *_test.go, *-test.js, *_test.py, test_*.py,
// *.test.js, usr/share/doc/*/examples.
func IsFixturePath(p string) bool {
	segs := strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '!' })
	for i, s := range segs {
		if i < len(segs)-1 && fixtureDirs[s] {
			return true
		}
		if s == "examples" && i >= 2 && segs[i-2] == "doc" && i < len(segs)-1 {
			return true
		}
	}
	if len(segs) == 0 {
		return false
	}
	b := segs[len(segs)-1]
	for _, suf := range []string{"_test.go", "-test.js", "_test.py", ".test.js", ".test.ts", ".spec.js", ".spec.ts", "-test.ts"} {
		if strings.HasSuffix(b, suf) {
			return true
		}
	}
	return strings.HasPrefix(b, "test_") && strings.HasSuffix(b, ".py")
}

// judgeSkip turns a damaged archive or a huge sparse file in a test location
// (the Go toolchain ships deliberately corrupt and sparse test archives)
// into a note: it cannot hide a
// secret anyone shipped by mistake more than the fixture itself. Bounds
// (depth, size, bombs) stay incomplete, and so does damaged content
// anywhere else.
func judgeSkip(k walk.Skip) walk.Skip {
	damaged := (strings.HasPrefix(k.Reason, "corrupt ") || strings.HasPrefix(k.Reason, "unreadable") || strings.HasPrefix(k.Reason, "sparse file")) &&
		!strings.Contains(k.Reason, "bomb") && !strings.Contains(k.Reason, "--max-expand")
	if k.Incomplete && damaged && IsFixturePath(k.Path) {
		k.Incomplete = false
		k.Reason += " (a damaged archive in a test location: a note)"
	}
	return k
}

// Skip is something that was not fully read.
type Skip struct {
	Target     string `json:"target"`
	Layer      string `json:"layer,omitempty"`
	Path       string `json:"path"`
	Reason     string `json:"reason"`
	Incomplete bool   `json:"incomplete"`
}

// Result is everything a scan produced.
type Result struct {
	Findings []Finding `json:"findings"`
	Skips    []Skip    `json:"skipped"`
	// Errors make the scan incomplete (exit 2): unreadable targets,
	// corrupt layers, digest mismatches.
	Errors []string `json:"errors"`
}

// Incomplete reports whether anything could not be read.
func (r *Result) Incomplete() bool {
	if len(r.Errors) > 0 {
		return true
	}
	for _, s := range r.Skips {
		if s.Incomplete {
			return true
		}
	}
	return false
}

// Scanner scans targets with one engine.
type Scanner struct {
	Engine  *rules.Engine
	Limits  walk.Limits
	Workers int
	// Known names the rules made from --known-secrets values, by rule id.
	Known map[string]string
	// Progress, when set, counts layers, files and bytes as they are read.
	Progress *Progress

	mu  sync.Mutex
	res *Result
}

// New returns a scanner with e.
func New(e *rules.Engine) *Scanner {
	return &Scanner{Engine: e, Limits: walk.DefaultLimits, Workers: runtime.GOMAXPROCS(0), res: &Result{}}
}

// generic rules find values by the name next to them; when a specific
// rule matched the same value, the specific one is the report.
var generic = map[string]bool{"generic-secret": true, "generic-password": true, "dotenv-secret": true, "url-credentials": true, "bearer-token-header": true, "kubeconfig-credentials": true}

func rank(f Finding) int {
	r := int(f.Severity) * 2
	if !generic[f.RuleID] {
		r += 10
	}
	return r
}

// dedupe keeps one finding per value and place.
func dedupe(fs []Finding) []Finding {
	best := map[string]int{}
	var out []Finding
	for _, f := range fs {
		if len(f.Secret) == 0 {
			out = append(out, f)
			continue
		}
		h := sha256.Sum256(f.Secret)
		k := f.Target + "\x00" + f.Image + "\x00" + f.LayerDigest + "\x00" + f.Path + "\x00" + string(h[:])
		if i, ok := best[k]; ok {
			if rank(f) > rank(out[i]) {
				out[i] = f
			}
			continue
		}
		best[k] = len(out)
		out = append(out, f)
	}
	return out
}

// mergeFileName drops a finding made by a file's name alone (id_rsa) when
// the file's content gave a finding too: one secret, one finding. The
// content finding notes the name rule.
func mergeFileName(fs []Finding) []Finding {
	content := map[string]int{}
	for i, f := range fs {
		if !f.wholeFile && len(f.Secret) > 0 {
			k := placeKey(f)
			if _, ok := content[k]; !ok {
				content[k] = i
			}
		}
	}
	var out []Finding
	var notes []struct {
		i    int
		rule string
	}
	for _, f := range fs {
		if f.wholeFile {
			if i, ok := content[placeKey(f)]; ok {
				notes = append(notes, struct {
					i    int
					rule string
				}{i, f.RuleID})
				continue
			}
		}
		out = append(out, f)
	}
	// Indices shift when entries are dropped; note by identity instead.
	for _, n := range notes {
		c := fs[n.i]
		for i := range out {
			if out[i].Path == c.Path && out[i].LayerDigest == c.LayerDigest && out[i].Image == c.Image && out[i].Target == c.Target && !out[i].wholeFile && out[i].RuleID == c.RuleID {
				out[i].Note = joinNote(out[i].Note, "file name also matches "+n.rule)
				break
			}
		}
	}
	return out
}

// placeKey names the file (or config location) of a finding in one image.
func placeKey(f Finding) string {
	return f.Target + "\x00" + f.Image + "\x00" + f.LayerDigest + "\x00" + f.Path
}

// mergeEncoded folds a finding whose value is an encoded block (the value
// of a Kubernetes Secret's data:, found by the Secret rule) into the
// finding of the secret decoded from that block: one secret, one finding.
// The kept finding names the kind (its rule: the key's format) and the
// encoding ("base64 at line N"), and notes the rule it absorbed.
func mergeEncoded(fs []Finding) []Finding {
	decoded := map[string][]int{}
	for i, f := range fs {
		if f.encoding != "" && len(f.Secret) > 0 {
			decoded[placeKey(f)] = append(decoded[placeKey(f)], i)
		}
	}
	if len(decoded) == 0 {
		return fs
	}
	drop := map[int]bool{}
	for i, f := range fs {
		if f.encoding != "" || f.wholeFile || len(f.Secret) == 0 {
			continue
		}
		for _, j := range decoded[placeKey(f)] {
			in := &fs[j]
			if dec := rules.DecodeValue(in.encoding, f.Secret); len(dec) == 0 || !bytes.Contains(dec, in.Secret) {
				continue
			}
			in.Note = joinNote(in.Note, "the "+in.encoding+" value that "+f.RuleID+" ("+f.Description+") matched")
			if f.Severity > in.Severity {
				in.Severity, in.SeverityStr = f.Severity, f.SeverityStr
			}
			drop[i] = true
			break
		}
	}
	var out []Finding
	for i, f := range fs {
		if !drop[i] {
			out = append(out, f)
		}
	}
	return out
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	if strings.Contains(a, b) {
		return a
	}
	return a + "; " + b
}

// mergeValues reports each value once per image: the first place (in
// report order) is the finding, the others are listed in its Locations.
func mergeValues(fs []Finding) []Finding {
	first := map[string]int{}
	var out []Finding
	for _, f := range fs {
		if len(f.Secret) == 0 || f.KnownSecret != "" {
			out = append(out, f)
			continue
		}
		h := sha256.Sum256(f.Secret)
		k := f.Target + "\x00" + f.Image + "\x00" + f.Class + "\x00" + string(h[:])
		if i, ok := first[k]; ok {
			out[i].Locations = append(out[i].Locations, location(f))
			if f.Severity > out[i].Severity {
				out[i].Severity, out[i].SeverityStr = f.Severity, f.SeverityStr
			}
			continue
		}
		first[k] = len(out)
		out = append(out, f)
	}
	return out
}

// location names a place for Locations: layer, path and line.
func location(f Finding) string {
	l := f.Path
	if f.Line > 0 {
		l = fmt.Sprintf("%s:%d", l, f.Line)
	}
	if f.Layer > 0 {
		l = fmt.Sprintf("layer %d %s", f.Layer, l)
	}
	if f.Status != "" && f.Status != StatusFinal && f.Status != StatusConfig && f.Status != StatusFile {
		l += " (" + f.Status + ")"
	}
	return l
}

// Result returns the findings so far, deduplicated and sorted.
func (s *Scanner) Result() *Result {
	r := s.res
	r.Findings = mergeEncoded(mergeFileName(dedupe(r.Findings)))
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		if a.Layer != b.Layer {
			return a.Layer < b.Layer
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Line < b.Line
	})
	r.Findings = mergeValues(r.Findings)
	return r
}

// Fail records an error that leaves the scan incomplete.
func (s *Scanner) Fail(format string, args ...any) {
	s.mu.Lock()
	s.res.Errors = append(s.res.Errors, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

func (s *Scanner) addSkip(k Skip) {
	s.mu.Lock()
	s.res.Skips = append(s.res.Skips, k)
	s.mu.Unlock()
}

// Add records a finding made outside the scanner (Dockerfile checks).
func (s *Scanner) Add(f Finding) { s.add(f) }

// Edit lets a caller amend findings (add a fix) after a scan step.
func (s *Scanner) Edit(fn func(f *Finding)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.res.Findings {
		fn(&s.res.Findings[i])
	}
}

func (s *Scanner) add(f Finding) {
	f.SeverityStr = f.Severity.String()
	if f.Class == "" {
		f.Class = ClassSecret
		if f.Status != StatusConfig && IsFixturePath(f.Path) {
			f.Class = ClassFixture
		}
	}
	if name, ok := s.Known[f.RuleID]; ok {
		f.KnownSecret = name
		f.Class = ClassSecret // a known secret is one wherever it is
		f.Preview = ""
	} else if f.Preview == "" && f.wholeFile {
		f.Preview = "(whole file)"
	} else if f.Preview == "" && len(f.Secret) > 0 {
		f.Preview = f.Secret.Preview()
	}
	f.Fingerprint = fingerprint(f)
	s.mu.Lock()
	s.res.Findings = append(s.res.Findings, f)
	s.mu.Unlock()
}

// fingerprint identifies a finding across runs and rebuilds without
// depending on the value (which it must not reveal): rule, where it is
// (path or config key, not the layer digest, which changes with every
// build), and the line.
func fingerprint(f Finding) string {
	h := sha256.Sum256([]byte(f.RuleID + "\x00" + f.Path + "\x00" + fmt.Sprint(f.Line) + "\x00" + f.Image))
	return hex.EncodeToString(h[:16])
}

func fromMatch(m rules.Match) Finding {
	f := Finding{RuleID: m.Rule.ID, Description: m.Rule.Description, Severity: m.Rule.Severity,
		Line: m.Line, Note: m.Note, Secret: m.Secret, Fix: m.Rule.Fix, wholeFile: m.Rule.FileOnly(), encoding: m.Encoding}
	if m.Example {
		f.Class = ClassFixture // a documented example
	}
	return f
}

// layerJob is one unique layer and what it yields.
type layerJob struct {
	layer   source.Layer
	entries map[string]byte // cleaned path -> tar type flag, or 'w' whiteout, 'o' opaque
	matches []walk.Match
	err     error
	// digests and manifests feed the image's provenance index.
	digests   map[string]provenance.Digest
	manifests []manifest
	// diffDigest is the uncompressed digest computed when the blob digest
	// was not known (stream mode matches it against the config).
	diffDigest string
}

type manifest struct {
	name string
	data []byte
}

// provenanceIndex reads the package manifests and Go module files of an
// image's layers, in order (a later layer's manifest wins).
func provenanceIndex(img source.Image, jobs map[string]*layerJob) *provenance.Index {
	x := provenance.New()
	for _, l := range img.Layers {
		j := jobs[l.Key()]
		if j == nil {
			continue
		}
		for _, m := range j.manifests {
			x.AddManifest(m.name, m.data)
		}
		for n, d := range j.digests {
			if provenance.ModuleFile(n) {
				x.AddModuleFile(n, d.SHA256)
			}
		}
	}
	return x
}

// shipped marks f as shipped by a package when the file holding it (the
// outer file of an archive member) is one a package installed, unmodified.
func shipped(f *Finding, x *provenance.Index, digests map[string]provenance.Digest) {
	outer := walk.OuterPath(f.Path)
	d, ok := digests[outer]
	if !ok {
		return
	}
	if o := x.Owner(outer, d); o != "" {
		f.Class = ClassShipped
		f.Note = joinNote(f.Note, "shipped by "+o+", unmodified")
	}
}

// Target scans every image of a target: each unique layer once (in
// parallel), then the configs, then the findings with their layer status.
func (s *Scanner) Target(ctx context.Context, t *source.Target) {
	if t.Stream != nil {
		s.stream(ctx, t)
		return
	}
	jobs := map[string]*layerJob{}
	var order []*layerJob
	for _, img := range t.Images {
		for _, l := range img.Layers {
			if _, ok := jobs[l.Key()]; !ok {
				j := &layerJob{layer: l}
				jobs[l.Key()] = j
				order = append(order, j)
			}
		}
	}
	if p := s.Progress; p != nil {
		p.Layers.Add(int64(len(order)))
		for _, j := range order {
			if j.layer.Size <= 0 {
				p.unknownSize.Store(true)
			}
			p.Total.Add(j.layer.Size)
		}
	}
	work := make(chan *layerJob)
	var wg sync.WaitGroup
	for i := 0; i < max(1, min(s.Workers, len(order))); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := walk.New(s.Engine)
			w.Limits = s.Limits
			for j := range work {
				s.layer(ctx, t.Name, w, j)
				if s.Progress != nil {
					s.Progress.LayersDone.Add(1)
				}
			}
		}()
	}
	for _, j := range order {
		work <- j
	}
	close(work)
	wg.Wait()
	s.report(t, jobs)
}

// report turns layer results into findings, image by image.
func (s *Scanner) report(t *source.Target, jobs map[string]*layerJob) {
	reported := map[string]bool{}
	for _, img := range t.Images {
		s.config(t.Name, img)
		hist := historyIndex(img)
		prov := provenanceIndex(img, jobs)
		for i, l := range img.Layers {
			j := jobs[l.Key()]
			if j == nil {
				s.Fail("%s: layer %d (%s) is missing from the image", t.Name, i+1, short(l.Key()))
				continue
			}
			if j.err != nil {
				if !reported[l.Key()] {
					s.Fail("%s: layer %d (%s): %v", t.Name, i+1, short(l.Key()), j.err)
				}
				reported[l.Key()] = true
				continue
			}
			if reported[l.Key()] {
				s.addPlatform(l.Key(), img.Platform)
				continue
			}
			reported[l.Key()] = true
			for _, m := range j.matches {
				f := fromMatch(m.Match)
				f.Target, f.Image, f.Path = t.Name, img.Name, m.Path
				if img.Platform != "" {
					f.Platforms = []string{img.Platform}
				}
				f.Layer, f.LayerDigest = i+1, l.Key()
				if i < len(hist) {
					f.History = hist[i]
				}
				f.Status = status(img, jobs, i, walk.OuterPath(m.Path))
				shipped(&f, prov, j.digests)
				s.add(f)
			}
		}
	}
}

func (s *Scanner) addPlatform(key, platform string) {
	if platform == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.res.Findings {
		if s.res.Findings[i].LayerDigest == key {
			s.res.Findings[i].Platforms = append(s.res.Findings[i].Platforms, platform)
		}
	}
}

func short(k string) string {
	if i := strings.IndexByte(k, ':'); i >= 0 && len(k) > i+13 {
		return k[:i+13]
	}
	return k
}

// historyIndex maps layer i to its 1-based history step (history entries
// marked empty_layer have no layer).
func historyIndex(img source.Image) []int {
	if img.Config == nil {
		return nil
	}
	var out []int
	for i, h := range img.Config.History {
		if !h.EmptyLayer {
			out = append(out, i+1)
		}
	}
	return out
}

// layer reads one layer blob once, verifying its digest on the way.
func (s *Scanner) layer(ctx context.Context, target string, w *walk.Walker, j *layerJob) {
	if err := ctx.Err(); err != nil {
		j.err = err
		return
	}
	rc, err := j.layer.Open()
	if err != nil {
		j.err = err
		return
	}
	defer rc.Close()
	s.walkLayer(target, w, j, s.Progress.reader(ctxReader{ctx, rc}))
}

// ctxReader stops a layer read when the scan is cancelled (Ctrl-C), instead
// of finishing a multi-gigabyte stream first.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// walkLayer walks raw (the blob as stored) into j, checking the blob digest
// when known, else the diff_id (and recording the diff_id it computed).
func (s *Scanner) walkLayer(target string, w *walk.Walker, j *layerJob, raw io.Reader) {
	j.entries = map[string]byte{}
	j.digests = map[string]provenance.Digest{}
	w.OnDigest = func(name string, d provenance.Digest) { j.digests[name] = d }
	w.OnManifest = func(name string, data []byte) { j.manifests = append(j.manifests, manifest{name, data}) }
	w.OnMatch = func(m walk.Match) { j.matches = append(j.matches, m) }
	w.OnSkip = func(k walk.Skip) {
		k = judgeSkip(k)
		s.addSkip(Skip{Target: target, Layer: j.layer.Key(), Path: k.Path, Reason: k.Reason, Incomplete: k.Incomplete})
	}
	w.OnEntry = func(name string, hdr *tar.Header) {
		if s.Progress != nil && hdr.Typeflag == tar.TypeReg {
			s.Progress.Files.Add(1)
		}
		base := path.Base(name)
		switch {
		case base == ".wh..wh..opq":
			j.entries[path.Dir(name)+"/"] = 'o'
		case strings.HasPrefix(base, ".wh."):
			j.entries[path.Join(path.Dir(name), strings.TrimPrefix(base, ".wh."))] = 'w'
		default:
			j.entries[name] = hdr.Typeflag
		}
	}
	blobHash, diffHash := sha256.New(), sha256.New()
	verifyBlob := j.layer.Digest.Algorithm == "sha256"
	if verifyBlob {
		raw = io.TeeReader(raw, blobHash)
	} else {
		// No blob digest to check (docker save, the Docker Engine): hash
		// the uncompressed tar and check it against the config's diff_id.
		w.DiffHash = diffHash
	}
	err := w.Layer(raw)
	w.DiffHash = nil
	if err != nil {
		j.err = err
		return
	}
	if verifyBlob {
		if got := "sha256:" + hex.EncodeToString(blobHash.Sum(nil)); got != j.layer.Digest.String() {
			j.err = fmt.Errorf("digest mismatch: the manifest says %s, the blob hashes to %s: the blob is corrupt or was tampered with", j.layer.Digest, got)
		}
		return
	}
	j.diffDigest = "sha256:" + hex.EncodeToString(diffHash.Sum(nil))
	if j.layer.DiffID.Algorithm == "sha256" && j.diffDigest != j.layer.DiffID.String() {
		j.err = fmt.Errorf("diff_id mismatch: the config says %s, the layer hashes to %s: the layer is corrupt or was tampered with", j.layer.DiffID, j.diffDigest)
	}
}

// status says whether the file at p, found in layer i, is still there in
// the image's final filesystem.
func status(img source.Image, jobs map[string]*layerJob, i int, p string) string {
	for k := i + 1; k < len(img.Layers); k++ {
		e := jobs[img.Layers[k].Key()].entries
		if e == nil {
			continue
		}
		if t, ok := e[p]; ok {
			if t == 'w' {
				return fmt.Sprintf("deleted by layer %d; recoverable from layer %d", k+1, i+1)
			}
			return fmt.Sprintf("overwritten by layer %d; recoverable from layer %d", k+1, i+1)
		}
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if t, ok := e[d]; ok && t == 'w' {
				return fmt.Sprintf("deleted by layer %d (directory %s removed); recoverable from layer %d", k+1, d, i+1)
			} else if ok && t != tar.TypeDir {
				return fmt.Sprintf("hidden by layer %d (%s replaced); recoverable from layer %d", k+1, d, i+1)
			}
			if e[d+"/"] == 'o' {
				return fmt.Sprintf("deleted by layer %d (opaque directory %s); recoverable from layer %d", k+1, d, i+1)
			}
		}
	}
	return StatusFinal
}
