// Package policy is the workload side of least privilege: a deny-by-default
// file that says which references a workload may read, where its files may
// go, whether values may enter the environment and how large a secret may
// be. It is checked on canonical references before any fetch, and every
// violation is reported at once.
//
// Two policies can apply: the one the workload names (--policy, policy:,
// INJECT_POLICY) and the platform's guardrail at /etc/secretbroker/policy.yaml,
// which applies whenever it exists and is owned by root, and which no flag
// or variable can turn off. A plan must pass both.
package policy

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/secretbroker/secretbroker/identity"
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/readgate"
)

// GuardrailPath is the platform policy. It is a variable only so this
// package's own tests can point it elsewhere; nothing outside tests sets it.
var GuardrailPath = "/etc/secretbroker/policy.yaml"

// Policy is one policy file.
type Policy struct {
	Allow            []string `yaml:"allow"`
	Deny             []string `yaml:"deny"`
	AllowEnvExposure bool     `yaml:"allow_env_exposure"`
	AllowDisk        bool     `yaml:"allow_disk"`
	Dirs             []string `yaml:"dirs"`
	MaxSecretBytes   int64    `yaml:"max_secret_bytes"`
	// RunAsNonRoot refuses to start the app as uid 0 or with gid 0 (primary
	// or supplementary).
	RunAsNonRoot bool `yaml:"run_as_non_root"`
	// RequireNoNewPrivileges refuses a start without --no-new-privileges.
	RequireNoNewPrivileges bool `yaml:"require_no_new_privileges"`

	Source    string `yaml:"-"` // the file it came from, for messages
	Guardrail bool   `yaml:"-"` // it is the platform's guardrail
	allow     []*regexp.Regexp
	deny      []*regexp.Regexp
}

// Load reads a policy file strictly (see Parse). It must be a regular file
// no larger than MaxBytes.
func Load(path string) (*Policy, error) {
	b, err := readCapped(path)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return Parse(path, b)
}

// readCapped reads a regular file of at most MaxBytes without blocking on
// a FIFO or a device.
func readCapped(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readCappedFile(f)
}

// readCappedFile is readCapped on an open file.
func readCappedFile(f *os.File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("over the %d-byte limit for a policy", MaxBytes)
	}
	return b, nil
}

// Parse reads a policy from b; source names it in messages. It is strict:
// one YAML document, a mapping of known keys each given once, no anchors,
// aliases, merge keys or tags, true/false and decimal numbers written
// plainly. A misspelt "deny" silently ignored would widen access, and a
// construct two readers could read differently would make the policy say
// one thing and do another.
func Parse(source string, b []byte) (*Policy, error) {
	p := &Policy{Source: source}
	root, err := strict(source, b)
	if err != nil {
		return nil, err
	}
	if root != nil {
		if err := root.Decode(p); err != nil {
			return nil, &StrictError{Source: source, Rule: err.Error()}
		}
	}
	var bad []string
	base := policyDir(source)
	for _, pat := range p.Allow {
		re, err := compile(pat, base, false)
		if err != nil {
			bad = append(bad, err.Error())
		}
		p.allow = append(p.allow, re)
	}
	for _, pat := range p.Deny {
		re, err := compile(pat, base, true)
		if err != nil {
			bad = append(bad, err.Error())
		}
		p.deny = append(p.deny, re)
	}
	for _, d := range p.Dirs {
		if !filepath.IsAbs(d) {
			bad = append(bad, fmt.Sprintf("dirs: %q is not an absolute path", d))
		}
	}
	if p.MaxSecretBytes < 0 {
		bad = append(bad, "max_secret_bytes: must not be negative")
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("policy %s: %s", source, strings.Join(bad, "; "))
	}
	return p, nil
}

// policyDir is the real directory of a policy file, which relative
// file:// patterns resolve against.
func policyDir(source string) string {
	d, err := readgate.RealPath(filepath.Dir(source))
	if err != nil {
		return filepath.Dir(source)
	}
	return d
}

// compile turns SCHEME://PATH-with-globs into a regexp: "*" is one path
// segment (no "/"), "**" any depth. Patterns match canonical identities
// (providers.IdentityOf): a file:// pattern is made absolute against base
// (the policy file's directory) with the symlinks of its glob-free prefix
// resolved, as a file's identity is its absolute real path; a vault://
// pattern loses a leading "/", as Vault paths do. A scheme may define its
// own pattern syntax (aws-sm's ?region=&account=, see
// providers.PatternRegexp); deny says which list the pattern is in.
func compile(pat, base string, deny bool) (*regexp.Regexp, error) {
	scheme, path, ok := strings.Cut(pat, "://")
	if !ok || !providers.KnownScheme(scheme) {
		return nil, fmt.Errorf("pattern %q: want SCHEME://PATH with a known scheme (%s)", pat, strings.Join(providers.Schemes(), ", "))
	}
	re, err := providers.PatternRegexp(scheme, path, deny, func(p string) string { return filePattern(p, base) })
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %v", pat, err)
	}
	return regexp.Compile("^" + regexp.QuoteMeta(scheme+"://") + re + "$")
}

// filePattern makes a file:// pattern absolute and resolves the symlinks of
// the part before its first glob. A relative pattern is relative to base,
// except one that starts with "**", which matches at any depth from "/".
func filePattern(path, base string) string {
	switch {
	case strings.HasPrefix(path, "**"):
		// "file://**" reads as any file, wherever the policy is.
		path = "/" + path
	case !filepath.IsAbs(path):
		path = base + "/" + path
	}
	i := strings.IndexByte(path, '*')
	if i < 0 {
		if r, err := readgate.RealPath(path); err == nil {
			return r
		}
		return filepath.Clean(path)
	}
	dir := path[:strings.LastIndexByte(path[:i], '/')+1]
	if r, err := readgate.RealPath(dir); err == nil {
		return strings.TrimSuffix(r, "/") + "/" + path[len(dir):]
	}
	return path
}

// Violation is one thing a policy forbids.
type Violation struct {
	Policy string // the file
	What   string // the secret or setting
	Why    string
}

func (v Violation) String() string { return fmt.Sprintf("%s: %s (policy %s)", v.What, v.Why, v.Policy) }

// Denied is every violation of a plan; its exit code is 77.
type Denied []Violation

func (d Denied) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the policy denies %d thing(s):", len(d))
	for _, v := range d {
		b.WriteString("\n  " + v.String())
	}
	return b.String()
}

// Item is one secret of a plan.
type Item struct {
	Name     string
	Ref      providers.Ref
	Identity string // providers.IdentityOf(Ref); "" means Ref.Target()
	Exposed  bool   // expose_as puts the value in the environment
}

// Plan is what the workload is about to do.
type Plan struct {
	Items     []Item
	Dir       string
	AllowDisk bool // --allow-disk was given
	// Start is how the app will be started; nil when no app is started
	// here (the broker, check, lint), and then run_as_non_root and
	// require_no_new_privileges have nothing to judge.
	Start *Start
}

// Start is how inject starts the app.
type Start struct {
	RunAs      *identity.Identity // --user; nil keeps inject's own ids
	NoNewPrivs bool               // --no-new-privileges
}

// Allows reports whether the reference's target is allowed and not denied.
func (p *Policy) Allows(ref providers.Ref) (bool, string) { return p.AllowsID(ref.Target()) }

// AllowsID reports whether a canonical identity is allowed and not denied.
func (p *Policy) AllowsID(t string) (bool, string) {
	for i, re := range p.deny {
		if re.MatchString(t) {
			return false, fmt.Sprintf("matches deny %q", p.Deny[i])
		}
	}
	for i, re := range p.allow {
		if re.MatchString(t) {
			return true, fmt.Sprintf("allowed by %q", p.Allow[i])
		}
	}
	if len(p.allow) == 0 {
		return false, "the policy allows nothing (no allow: list)"
	}
	return false, "matches no allow pattern"
}

// Check returns every violation of plan.
func (p *Policy) Check(plan Plan) []Violation {
	var out []Violation
	add := func(what, format string, args ...any) {
		out = append(out, Violation{Policy: p.Source, What: what, Why: fmt.Sprintf(format, args...)})
	}
	for _, it := range plan.Items {
		id := it.Identity
		if id == "" {
			id = it.Ref.Target()
		}
		if ok, why := p.AllowsID(id); !ok {
			what := fmt.Sprintf("secret %s (%s)", it.Name, it.Ref.Canonical())
			if id != it.Ref.Target() {
				what = fmt.Sprintf("secret %s (%s, read as %s)", it.Name, it.Ref.Canonical(), id)
			}
			add(what, "%s", why)
		}
		if it.Exposed && !p.AllowEnvExposure {
			add("secret "+it.Name, "expose_as puts the value in the environment, and allow_env_exposure is false")
		}
	}
	if plan.AllowDisk && !p.AllowDisk {
		add("--allow-disk", "allow_disk is false")
	}
	if p.RunAsNonRoot && plan.Start != nil {
		if why := rootIDs(plan.Start.RunAs); why != "" {
			add("the app's user", "%s, and run_as_non_root is true (give --user a non-root UID:GID)", why)
		}
	}
	if p.RequireNoNewPrivileges && plan.Start != nil && !plan.Start.NoNewPrivs {
		add("--no-new-privileges", "not given, and require_no_new_privileges is true")
	}
	if len(p.Dirs) > 0 && !underAny(plan.Dir, p.Dirs) {
		what := "dir " + plan.Dir
		if real := Resolve(plan.Dir); real != filepath.Clean(plan.Dir) {
			what += " (resolved: " + real + ")"
		}
		add(what, "not under the allowed dirs %v", p.Dirs)
	}
	return out
}

// rootIDs says how the app would run as root ("" when it would not): with
// no --user it keeps inject's effective ids and groups.
func rootIDs(id *identity.Identity) string {
	if id == nil {
		uid, gid := os.Geteuid(), os.Getegid()
		groups, _ := os.Getgroups()
		switch {
		case uid == 0:
			return "it would run as uid 0 (no --user, and inject runs as root)"
		case gid == 0 || slices.Contains(groups, 0):
			return "it would run with gid 0 (no --user, and inject has group 0)"
		}
		return ""
	}
	switch {
	case id.UID == 0:
		return fmt.Sprintf("--user %s is uid 0", id.Spec)
	case id.GID == 0:
		return fmt.Sprintf("--user %s has gid 0", id.Spec)
	case slices.Contains(id.Groups, 0):
		return fmt.Sprintf("--user %s is in group 0", id.Spec)
	}
	return ""
}

// CheckSize is applied after a fetch: max_secret_bytes bounds each value.
func (p *Policy) CheckSize(name string, n int) *Violation {
	if p.MaxSecretBytes > 0 && int64(n) > p.MaxSecretBytes {
		return &Violation{Policy: p.Source, What: "secret " + name, Why: fmt.Sprintf("is %d bytes, over max_secret_bytes %d", n, p.MaxSecretBytes)}
	}
	return nil
}

// underAny matches on fully resolved paths: a --dir that reaches an
// allowed directory's name through a symlink (or an allowed name that is a
// symlink to elsewhere) is judged by where the files would really go.
func underAny(dir string, roots []string) bool {
	dir = Resolve(dir)
	for _, r := range roots {
		r = Resolve(r)
		if dir == r || strings.HasPrefix(dir, r+"/") || r == "/" {
			return true
		}
	}
	return false
}

// Set is every policy in force: the guardrail and the workload's own.
type Set []*Policy

// GuardrailError is a guardrail that exists but cannot be trusted or read
// exactly: the start fails closed (77), since the platform meant a limit.
type GuardrailError struct{ Err error }

func (e *GuardrailError) Error() string { return "guardrail: " + e.Err.Error() }
func (e *GuardrailError) Unwrap() error { return e.Err }

// LoadSet loads the workload policy (path may be "") and the guardrail.
// A guardrail that exists is the platform's only when nobody but root could
// have written it: it and every directory above it owned by root and not
// writable by group or others (a sticky directory such as /tmp is accepted
// above a root-owned entry). One that is writable by others, not a regular
// file, too large, or not strictly parseable is a *GuardrailError rather
// than ignored: it is meant to be a limit, and one that is not should stop
// the start. A guardrail file owned by another user in root-only
// directories was put there by root and is ignored with a note.
func LoadSet(path string) (Set, []string, error) {
	var set Set
	var notes []string
	g, note, err := loadGuardrail(GuardrailPath)
	if err != nil {
		return nil, nil, &GuardrailError{Err: err}
	}
	if note != "" {
		notes = append(notes, note)
	}
	if g != nil {
		g.Guardrail = true
		set = append(set, g)
	}
	if path != "" {
		p, err := Load(path)
		if err != nil {
			return nil, nil, err
		}
		set = append(set, p)
	}
	return set, notes, nil
}

// Check returns every violation of every policy in the set.
func (s Set) Check(plan Plan) error {
	var all Denied
	for _, p := range s {
		all = append(all, p.Check(plan)...)
	}
	if len(all) > 0 {
		return all
	}
	return nil
}

// Gate is the request-time check (providers.Gate): the identity a
// provider is about to request must be allowed by every policy in the set.
func (s Set) Gate(id string) error {
	var d Denied
	for _, p := range s {
		if ok, why := p.AllowsID(id); !ok {
			d = append(d, Violation{Policy: p.Source, What: id, Why: why})
		}
	}
	if len(d) > 0 {
		return d
	}
	return nil
}

// CheckFile returns the guardrail's violations for a file read on the
// workload's behalf that is not a secret (what: "template app.conf.tmpl",
// id: its identity, "file://" and the real path).
func (s Set) CheckFile(what, id string) []Violation {
	var out []Violation
	for _, p := range s.Guardrail() {
		if ok, why := p.AllowsID(id); !ok {
			out = append(out, Violation{Policy: p.Source, What: what + " (" + id + ")", Why: why})
		}
	}
	return out
}

// Guardrail is the set's guardrail alone (empty when there is none): what
// a file read on the workload's behalf that is not a secret (a template
// source, a token file) must pass.
func (s Set) Guardrail() Set {
	var out Set
	for _, p := range s {
		if p.Guardrail {
			out = append(out, p)
		}
	}
	return out
}

// CheckSize applies every max_secret_bytes.
func (s Set) CheckSize(name string, n int) *Violation {
	for _, p := range s {
		if v := p.CheckSize(name, n); v != nil {
			return v
		}
	}
	return nil
}

// Verdict explains, for --dry-run, what the set says of one reference read
// as the canonical identity id ("" means ref.Target()).
func (s Set) Verdict(ref providers.Ref, id string) string {
	if len(s) == 0 {
		return "allowed (no policy: the declaration is the limit)"
	}
	if id == "" {
		id = ref.Target()
	}
	var parts []string
	for _, p := range s {
		ok, why := p.AllowsID(id)
		if !ok {
			return "DENIED: " + why + " (" + p.Source + ")"
		}
		parts = append(parts, why)
	}
	return "allowed: " + strings.Join(parts, "; ")
}

// Resolve is path with every symlink of its longest existing prefix
// resolved, and the rest (which does not exist yet) appended, cleaned.
func Resolve(path string) string {
	path = filepath.Clean(path)
	rest := ""
	for p := path; ; p = filepath.Dir(p) {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(real, rest)
		}
		if p == "/" || p == "." {
			return path
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}
