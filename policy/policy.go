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
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v3"

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

	Source    string `yaml:"-"` // the file it came from, for messages
	Guardrail bool   `yaml:"-"` // it is the platform's guardrail
	allow     []*regexp.Regexp
	deny      []*regexp.Regexp
}

// Load reads a policy file strictly: an unknown key is an error, since a
// misspelt "deny" that is silently ignored would widen access.
func Load(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return Parse(path, b)
}

// Parse reads a policy from b; source names it in messages.
func Parse(source string, b []byte) (*Policy, error) {
	p := &Policy{Source: source}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(p); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("policy %s: %v", source, err)
	}
	var bad []string
	base := policyDir(source)
	for _, pat := range p.Allow {
		re, err := compile(pat, base)
		if err != nil {
			bad = append(bad, err.Error())
		}
		p.allow = append(p.allow, re)
	}
	for _, pat := range p.Deny {
		re, err := compile(pat, base)
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
// pattern loses a leading "/", as Vault paths do.
func compile(pat, base string) (*regexp.Regexp, error) {
	scheme, path, ok := strings.Cut(pat, "://")
	if !ok || !providers.KnownScheme(scheme) {
		return nil, fmt.Errorf("pattern %q: want SCHEME://PATH with a known scheme (%s)", pat, strings.Join(providers.Schemes(), ", "))
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("pattern %q: patterns match SCHEME://PATH; a grant is per secret, not per key or version", pat)
	}
	switch scheme {
	case "op":
		path = strings.ToLower(path)
	case "vault":
		path = strings.TrimPrefix(path, "/")
	case "file":
		path = filePattern(path, base)
	}
	var b strings.Builder
	b.WriteString("^" + regexp.QuoteMeta(scheme+"://"))
	for i := 0; i < len(path); i++ {
		switch {
		case strings.HasPrefix(path[i:], "**"):
			b.WriteString(".*")
			i++
		case path[i] == '*':
			b.WriteString("[^/]*")
		default:
			b.WriteString(regexp.QuoteMeta(path[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// filePattern makes a file:// pattern absolute and resolves the symlinks of
// the part before its first glob.
func filePattern(path, base string) string {
	if !filepath.IsAbs(path) {
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
	if len(p.Dirs) > 0 && !underAny(plan.Dir, p.Dirs) {
		add("dir "+plan.Dir, "not under the allowed dirs %v", p.Dirs)
	}
	return out
}

// CheckSize is applied after a fetch: max_secret_bytes bounds each value.
func (p *Policy) CheckSize(name string, n int) *Violation {
	if p.MaxSecretBytes > 0 && int64(n) > p.MaxSecretBytes {
		return &Violation{Policy: p.Source, What: "secret " + name, Why: fmt.Sprintf("is %d bytes, over max_secret_bytes %d", n, p.MaxSecretBytes)}
	}
	return nil
}

func underAny(dir string, roots []string) bool {
	dir = filepath.Clean(dir)
	for _, r := range roots {
		r = filepath.Clean(r)
		if dir == r || strings.HasPrefix(dir, r+"/") || r == "/" {
			return true
		}
	}
	return false
}

// Set is every policy in force: the guardrail and the workload's own.
type Set []*Policy

// LoadSet loads the workload policy (path may be "") and the guardrail.
// A guardrail that exists but is not owned by root, or that others may
// write, is an error rather than ignored quietly: it is meant to be the
// platform's, and one that is not should stop the start.
func LoadSet(path string) (Set, []string, error) {
	var set Set
	var notes []string
	if fi, err := os.Stat(GuardrailPath); err == nil {
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case st == nil || st.Uid != 0:
			notes = append(notes, fmt.Sprintf("%s is not owned by root, so it is not a guardrail; ignored", GuardrailPath))
		case fi.Mode().Perm()&0o022 != 0:
			return nil, nil, fmt.Errorf("guardrail %s is writable by group or others (mode %s); make it 0644 or stricter", GuardrailPath, fi.Mode().Perm())
		default:
			g, err := Load(GuardrailPath)
			if err != nil {
				return nil, nil, err
			}
			g.Guardrail = true
			set = append(set, g)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("guardrail %s: %w", GuardrailPath, err)
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
