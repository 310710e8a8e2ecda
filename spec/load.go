package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/secretbroker/secretbroker/identity"
	"github.com/secretbroker/secretbroker/internal/suggest"
	"github.com/secretbroker/secretbroker/policy"
	"github.com/secretbroker/secretbroker/process"
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/readgate"
	"github.com/secretbroker/secretbroker/tmpfs"
)

// AddFlags declares the flags inject and broker share (docs/reference.md).
func AddFlags(f *pflag.FlagSet) {
	f.String("config", "", "config file (YAML); also INJECT_CONFIG")
	f.String("dir", DefaultDir, "directory for secret files; must be tmpfs or ramfs")
	f.String("user", "", "run the app as UID[:GID] or NAME[:GROUP]; owns the files")
	f.String("policy", "", "policy file (deny by default)")
	f.Duration("timeout", DefaultTimeout, "deadline for resolving every secret")
	f.Bool("allow-disk", false, "accept a disk-backed directory")
	f.Bool("mount", false, "mount a tmpfs on --dir when it is not one")
	f.Bool("strict", false, "reject unknown config keys instead of warning")
}

// fileSecret and fileTemplate are the config file's shapes.
type fileSecret struct {
	Name     string  `mapstructure:"name"`
	Ref      string  `mapstructure:"ref"`
	Mode     any     `mapstructure:"mode"`
	Env      *string `mapstructure:"env"`
	ExposeAs string  `mapstructure:"expose_as"`
	Optional bool    `mapstructure:"optional"`
}

type fileTemplate struct {
	Source string `mapstructure:"source"`
	Dest   string `mapstructure:"dest"`
	Mode   any    `mapstructure:"mode"`
}

// knownKeys are the top-level keys (docs/reference.md, "Configuration").
var knownKeys = map[string]bool{
	"dir": true, "user": true, "policy": true, "strip_env": true, "env_schemes": true,
	"secrets": true, "templates": true, "providers": true, "timeout": true,
	"allow_disk": true, "mount": true, "strict": true,
	"no_new_privileges": true, "keep_capabilities": true,
	"refresh": true, "max_staleness": true, "listen": true, "notify": true, "wipe_on_exit": true,
}

var (
	secretKeys   = map[string]bool{"name": true, "ref": true, "mode": true, "env": true, "expose_as": true, "optional": true}
	templateKeys = map[string]bool{"source": true, "dest": true, "mode": true}
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// settings is the viper that merges the settings in Load's order: a flag
// the command declares, then INJECT_* from env, then the config file (merged
// by the caller), then the defaults above.
func settings(flags *pflag.FlagSet, env []string) *viper.Viper {
	v := viper.New()
	for _, name := range []string{"config", "dir", "user", "policy", "timeout", "allow-disk", "mount", "strict",
		"refresh", "max-staleness", "listen", "wipe-on-exit",
		// inject's run command declares these two itself (broker and
		// check start no app); bound when present.
		"no-new-privileges", "keep-capabilities"} {
		if f := flags.Lookup(name); f != nil {
			_ = v.BindPFlag(strings.ReplaceAll(name, "-", "_"), f)
		}
	}
	v.SetDefault("dir", DefaultDir)
	v.SetDefault("timeout", DefaultTimeout)
	v.SetDefault("refresh", DefaultRefresh)
	v.SetDefault("max_staleness", DefaultMaxStaleness)
	v.SetDefault("listen", DefaultListen)
	fromEnviron(v, flags, env)
	return v
}

// fromEnviron gives each top-level key its INJECT_* variable (INJECT_DIR,
// INJECT_MAX_STALENESS) from env, the loader's one view of the environment,
// rather than viper reading the process's: a flag the user gave still wins,
// and a variable beats the config file. An empty variable counts as unset.
func fromEnviron(v *viper.Viper, flags *pflag.FlagSet, env []string) {
	vals := map[string]string{}
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "INJECT_") && val != "" {
			vals[k] = val
		}
	}
	for key := range knownKeys {
		val, ok := vals["INJECT_"+strings.ToUpper(key)]
		if ok && !flagChanged(flags, strings.ReplaceAll(key, "_", "-")) {
			v.Set(key, val)
		}
	}
	if val, ok := vals["INJECT_CONFIG"]; ok && !flagChanged(flags, "config") {
		v.Set("config", val)
	}
}

// Location is where a running broker delivers (Dir) and answers (Listen).
type Location struct{ Dir, Listen string }

// LoadLocation reads dir and listen as Load does (flag, INJECT_*, the
// config file, the default) and nothing else, so that the probes (broker
// healthcheck, inject wait) find the broker its own declaration describes,
// even when a secret in it could not be resolved here.
func LoadLocation(flags *pflag.FlagSet) (Location, error) {
	v := settings(flags, environ())
	if cfg := v.GetString("config"); cfg != "" {
		b, err := os.ReadFile(cfg)
		if err != nil {
			return Location{}, fmt.Errorf("config: cannot read %s: %v", cfg, unwrapPath(err))
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return Location{}, fmt.Errorf("config: %s is not valid YAML: %s", cfg, yamlError(err))
		}
		if err := v.MergeConfigMap(m); err != nil {
			return Location{}, fmt.Errorf("config: %s: %v", cfg, err)
		}
	}
	return Location{Dir: v.GetString("dir"), Listen: v.GetString("listen")}, nil
}

// Load reads the declaration from flags (which must have been declared with
// AddFlags, plus any others the caller binds), INJECT_* variables, the config
// file and environment references. It returns *Spec with warnings, or
// Problems listing everything wrong.
func Load(flags *pflag.FlagSet) (*Spec, error) { return loadSpec(flags, false) }

// LoadPlan is Load for what only reports (inject check, --dry-run): a
// template source the read gate refuses is not a problem here but kept in
// the spec with Template.Refused, so that each source gets its own
// verdict. Nothing that delivers may use it.
func LoadPlan(flags *pflag.FlagSet) (*Spec, error) { return loadSpec(flags, true) }

func loadSpec(flags *pflag.FlagSet, plan bool) (*Spec, error) {
	env := environ()
	v := settings(flags, env)

	s := &Spec{Environ: env, Providers: map[string]map[string]any{}}
	var probs Problems
	var unknown []string

	if cfg := v.GetString("config"); cfg != "" {
		s.ConfigFile = cfg
		// One read and one parse: the map feeds viper and tells which
		// top-level keys the file itself has (viper's own key list mixes in
		// defaults and flags).
		b, err := os.ReadFile(cfg)
		if err != nil {
			probs.add("config", "cannot read %s: %v", cfg, unwrapPath(err))
			return nil, probs
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			probs.add("config", "%s is not valid YAML: %s", cfg, yamlError(err))
			return nil, probs
		}
		if err := rawUser(b, m); err != nil {
			probs.add("user", "%v", err)
			return nil, probs
		}
		if err := v.MergeConfigMap(m); err != nil {
			probs.add("config", "%s: %v", cfg, err)
			return nil, probs
		}
		for k := range m {
			if !knownKeys[strings.ToLower(k)] {
				unknown = append(unknown, k)
			}
		}
	}

	s.Dir = v.GetString("dir")
	// Chosen by the user (flag, INJECT_DIR or the file), not the default.
	s.DirIsSet = flagChanged(flags, "dir") || v.InConfig("dir") || s.Getenv("INJECT_DIR") != ""
	if !filepath.IsAbs(s.Dir) {
		probs.add("dir", "%q is not an absolute path", s.Dir)
	}
	if u := v.GetString("user"); u != "" {
		id, err := identity.Parse(u)
		if err != nil {
			probs.add("user", "%v", err)
		}
		s.User = id
	}
	s.PolicyFile = v.GetString("policy")
	s.StripEnv = stringList(v, "strip_env")
	s.EnvSchemes = stringList(v, "env_schemes")
	if !v.IsSet("env_schemes") {
		// Each provider says whether its scheme is one (file is not:
		// ordinary variables hold file:// URLs).
		s.EnvSchemes = providers.EnvSchemes()
	}
	for _, sc := range s.EnvSchemes {
		if !providers.KnownScheme(sc) {
			probs.add("env_schemes", "unknown scheme %q (known: %s)", sc, strings.Join(providers.Schemes(), ", "))
		}
	}
	for _, name := range s.StripEnv {
		if !envNameRE.MatchString(name) {
			probs.add("strip_env", "%q is not a variable name", name)
		}
	}
	s.Timeout = duration(v, "timeout", &probs)
	if s.Timeout <= 0 {
		probs.add("timeout", "must be positive")
	}
	s.AllowDisk = boolean(v, "allow_disk", &probs)
	s.Mount = boolean(v, "mount", &probs)
	s.Strict = boolean(v, "strict", &probs)
	s.NoNewPrivileges = boolean(v, "no_new_privileges", &probs)
	if names := stringList(v, "keep_capabilities"); len(names) > 0 {
		keep, err := process.ParseCapabilities(names)
		if err != nil {
			probs.add("keep_capabilities", "%v", err)
		} else if v.GetString("user") == "" {
			probs.add("keep_capabilities", "needs user (--user, INJECT_USER, user:): without it the app keeps inject's capabilities")
		}
		s.KeepCapabilities = keep
	}
	s.Refresh = duration(v, "refresh", &probs)
	s.MaxStaleness = duration(v, "max_staleness", &probs)
	s.Listen = v.GetString("listen")
	s.WipeOnExit = boolean(v, "wipe_on_exit", &probs)
	if n := v.Get("notify"); n != nil {
		if err := decode(n, &s.Notify); err != nil {
			probs.add("notify", "%v", err)
		}
	}
	if p, ok := v.Get("providers").(map[string]any); ok {
		for name, block := range p {
			m, ok := block.(map[string]any)
			if !ok {
				probs.add("providers."+name, "want a mapping")
				continue
			}
			s.Providers[name] = providerBlock(name, m, s, &probs)
		}
	} else if v.IsSet("providers") && v.Get("providers") != nil {
		probs.add("providers", "want a mapping of provider blocks")
	}

	configDir := "."
	if s.ConfigFile != "" {
		configDir = filepath.Dir(s.ConfigFile)
	}
	s.loadSecrets(v.Get("secrets"), &probs)
	s.loadEnvRefs(&probs)
	s.loadTemplates(v.Get("templates"), configDir, plan, &probs)
	s.checkCollisions(&probs)

	sort.Strings(unknown)
	for _, k := range unknown {
		// A key close to a known one is a typo (`secret:` would start the
		// app with no secrets); others may be another program's.
		if hint := suggest.DidYouMean(suggest.Names(k, slices.Sorted(maps.Keys(knownKeys))), "%s"); hint != "" {
			probs.add(k, "unknown key%s", hint)
		} else if s.Strict {
			probs.add(k, "unknown key (--strict)")
		} else {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s: unknown key, ignored (it may be meant for another program; --strict rejects it)", k))
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return s, nil
}

func flagChanged(f *pflag.FlagSet, name string) bool {
	fl := f.Lookup(name)
	return fl != nil && fl.Changed
}

// stringList accepts a YAML list, or a comma-separated string (the form
// INJECT_ENV_SCHEMES=vault,op takes).
func stringList(v *viper.Viper, key string) []string {
	var out []string
	switch x := v.Get(key).(type) {
	case string:
		for _, p := range strings.Split(x, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	case []any:
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
	case []string:
		out = x
	}
	return out
}

// boolean reads a yes-or-no setting strictly: viper's GetBool reads
// anything it cannot parse ("yes" in INJECT_NO_NEW_PRIVILEGES, a YAML 1.2
// `yes`) as false, which would silently turn a protection off.
func boolean(v *viper.Viper, key string, probs *Problems) bool {
	switch x := v.Get(key).(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		if err != nil {
			probs.add(key, "%q is not true or false", x)
		}
		return b
	default:
		probs.add(key, "want true or false, got %v", x)
		return false
	}
}

func duration(v *viper.Viper, key string, probs *Problems) time.Duration {
	switch x := v.Get(key).(type) {
	case time.Duration:
		return x
	case string:
		d, err := time.ParseDuration(x)
		if err != nil {
			probs.add(key, "%q is not a duration (e.g. 30s, 5m)", x)
		}
		return d
	case int:
		probs.add(key, "%d has no unit; write e.g. %ds", x, x)
	case nil:
	default:
		probs.add(key, "want a duration such as 30s, got %v", x)
	}
	return 0
}

// MaxConcurrency caps a provider block's concurrency: more requests in
// flight than this is a typo, not a tuning.
const MaxConcurrency = 1024

// providerBlock takes the keys every provider block shares out of block
// (concurrency), so each provider decodes only its own; it returns the rest.
func providerBlock(name string, block map[string]any, s *Spec, probs *Problems) map[string]any {
	c, ok := block["concurrency"]
	if !ok {
		return block
	}
	rest := make(map[string]any, len(block))
	for k, v := range block {
		if k != "concurrency" {
			rest[k] = v
		}
	}
	var n int
	if err := decode(c, &n); err != nil || n < 1 || n > MaxConcurrency {
		probs.add("providers."+name+".concurrency", "%v is not a number of requests in flight from 1 to %d (default %d)", c, MaxConcurrency, providers.DefaultConcurrency)
		return rest
	}
	if s.Concurrency == nil {
		s.Concurrency = map[string]int{}
	}
	s.Concurrency[name] = n
	return rest
}

func decode(in any, out any) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: out, ErrorUnused: true, WeaklyTypedInput: true})
	if err != nil {
		return err
	}
	return d.Decode(in)
}

func mapKeys(in any) []string {
	m, ok := in.(map[string]any)
	if !ok {
		return nil
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// parseMode reads "0400" (a string, as docs/reference.md writes it) or a YAML
// integer (0400 unquoted is octal in YAML 1.1 and decodes to 256).
func parseMode(in any) (fs.FileMode, error) {
	switch x := in.(type) {
	case nil:
		return 0o400, nil
	case string:
		n, err := strconv.ParseUint(strings.TrimPrefix(x, "0o"), 8, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not an octal mode such as \"0400\"", x)
		}
		return checkMode(fs.FileMode(n))
	case int:
		return checkMode(fs.FileMode(x))
	}
	return 0, fmt.Errorf("want an octal mode such as \"0400\", got %v", in)
}

func checkMode(m fs.FileMode) (fs.FileMode, error) {
	if m > 0o777 {
		return 0, fmt.Errorf("%#o is not a permission mode (0000-0777)", m)
	}
	if m&0o002 != 0 {
		return 0, fmt.Errorf("%#o makes the secret writable by everyone", m)
	}
	if m&0o400 == 0 {
		return 0, fmt.Errorf("%#o does not let the owner read the secret", m)
	}
	return m, nil
}

// CheckName is tmpfs.CheckName: the file-name rule belongs to the directory.
var CheckName = tmpfs.CheckName

func defaultEnvVar(name string) string {
	up := strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(name))
	return up + "_FILE"
}

// unknownEntryKeys reports each key of a secret or template entry that is
// not one of known, with a suggestion: unlike a top-level key, no other
// program reads an entry, so `mod:` or `enviroment:` can only be a typo
// that would silently drop a setting.
func unknownEntryKeys(where string, item any, known map[string]bool, probs *Problems) {
	keys := mapKeys(item)
	sort.Strings(keys)
	for _, k := range keys {
		if !known[k] {
			names := slices.Sorted(maps.Keys(known))
			probs.add(where+"."+k, "unknown key%s (an entry takes %s)", suggest.DidYouMean(suggest.Names(k, names), "%s"), strings.Join(names, ", "))
		}
	}
}

func (s *Spec) loadSecrets(raw any, probs *Problems) {
	if raw == nil {
		return
	}
	list, ok := raw.([]any)
	if !ok {
		probs.add("secrets", "want a list")
		return
	}
	for i, item := range list {
		where := fmt.Sprintf("secrets[%d]", i)
		unknownEntryKeys(where, item, secretKeys, probs)
		var fsec fileSecret
		d, _ := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &fsec, WeaklyTypedInput: true})
		if err := d.Decode(item); err != nil {
			probs.add(where, "%v", err)
			continue
		}
		sec := Secret{Name: fsec.Name, ExposeAs: fsec.ExposeAs, Optional: fsec.Optional, Where: where}
		nameErr := CheckName(fsec.Name)
		if nameErr != nil {
			probs.add(where+".name", "%v", nameErr)
		}
		if fsec.Ref == "" {
			probs.add(where+".ref", "missing")
		} else if r, err := providers.ParseRef(fsec.Ref); err != nil {
			probs.add(where+".ref", "%v", err)
		} else {
			sec.Ref = r
		}
		m, err := parseMode(fsec.Mode)
		if err != nil {
			probs.add(where+".mode", "%v", err)
		}
		sec.Mode = m
		if fsec.Env != nil {
			sec.EnvVar = *fsec.Env
		} else if nameErr == nil {
			sec.EnvVar = defaultEnvVar(fsec.Name)
		}
		if sec.EnvVar != "" && !envNameRE.MatchString(sec.EnvVar) {
			probs.add(where+".env", "%q is not a variable name", sec.EnvVar)
		}
		if sec.ExposeAs != "" && !envNameRE.MatchString(sec.ExposeAs) {
			probs.add(where+".expose_as", "%q is not a variable name", sec.ExposeAs)
		}
		s.Secrets = append(s.Secrets, sec)
	}
}

// loadEnvRefs turns DB_PASSWORD=vault://... into a secret db_password with
// DB_PASSWORD_FILE pointing at it.
func (s *Spec) loadEnvRefs(probs *Problems) {
	for _, kv := range s.Environ {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || strings.HasPrefix(k, "INJECT_") {
			continue
		}
		if !s.IsEnvRef(val) {
			s.misspeltScheme(k, val, probs)
			continue
		}
		where := "env " + k
		r, err := providers.ParseRef(val)
		if err != nil {
			probs.add(where, "%v", err)
			continue
		}
		name := strings.ToLower(k)
		if err := CheckName(name); err != nil {
			probs.add(where, "cannot become a secret file: %v", err)
			continue
		}
		s.Secrets = append(s.Secrets, Secret{Name: name, Ref: r, Mode: 0o400, EnvVar: k + "_FILE", FromEnv: k, Where: where})
	}
}

// urlScheme is the SCHEME of a value that starts like a URL.
var urlScheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)

// misspeltScheme warns (with --strict: rejects) a variable whose value
// looks like a reference whose scheme is misspelt (valut://, VAULT://):
// left alone it would reach the app as a plain string, and the app would
// start without its secret. Only schemes of four or more letters are
// judged, so s3:// or ftp:// are never taken for op://; a scheme some
// provider knows (file:// when not in env_schemes) is left alone.
func (s *Spec) misspeltScheme(name, val string, probs *Problems) {
	m := urlScheme.FindStringSubmatch(val)
	if m == nil || len(m[1]) < 4 || providers.KnownScheme(m[1]) {
		return
	}
	hint := suggest.Names(strings.ToLower(m[1]), s.EnvSchemes)
	if len(hint) == 0 {
		return
	}
	msg := fmt.Sprintf("scheme %q is not one inject reads, so the value is passed on as it is%s", m[1], suggest.DidYouMean(hint, "%s://"))
	if s.Strict {
		probs.add("env "+name, "%s (--strict)", msg)
		return
	}
	s.Warnings = append(s.Warnings, fmt.Sprintf("env %s: %s (--strict rejects it)", name, msg))
}

// IsEnvRef reports whether an environment value is meant as a reference:
// it starts with SCHEME:// for a scheme in env_schemes.
func (s *Spec) IsEnvRef(val string) bool {
	for _, sc := range s.EnvSchemes {
		if strings.HasPrefix(val, sc+"://") {
			return true
		}
	}
	return false
}

// loadTemplates reads each template source through the read gate; with
// plan, a source the gate refuses is kept with its reason (Refused)
// rather than made a problem.
func (s *Spec) loadTemplates(raw any, configDir string, plan bool, probs *Problems) {
	if raw == nil {
		return
	}
	list, ok := raw.([]any)
	if !ok {
		probs.add("templates", "want a list")
		return
	}
	names := map[string]bool{}
	for _, sec := range s.Secrets {
		names[sec.Name] = true
	}
	var guard func(id string) error
	var guardErr error
	for i, item := range list {
		where := fmt.Sprintf("templates[%d]", i)
		unknownEntryKeys(where, item, templateKeys, probs)
		var ft fileTemplate
		d, _ := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &ft, WeaklyTypedInput: true})
		if err := d.Decode(item); err != nil {
			probs.add(where, "%v", err)
			continue
		}
		t := Template{Dest: ft.Dest, Where: where}
		if err := CheckName(ft.Dest); err != nil {
			probs.add(where+".dest", "%v", err)
		}
		m, err := parseMode(ft.Mode)
		if err != nil {
			probs.add(where+".mode", "%v", err)
		}
		t.Mode = m
		if ft.Source == "" {
			probs.add(where+".source", "missing")
			continue
		}
		t.Source = ft.Source
		if !filepath.IsAbs(t.Source) {
			t.Source = filepath.Join(configDir, t.Source)
		}
		// The guardrail is asked before the source is read: a source it
		// forbids is never read, so no part of it (a parse error quotes
		// identifiers) can reach a message. The run is then refused with
		// 77 by the policy check, which asks it again on Identity.
		if guard == nil {
			guard, guardErr = guardrailGate()
		}
		if id, err := readgate.Identity(t.Source); err == nil && (guardErr != nil || guard(id) != nil) {
			t.Identity, t.Withheld = id, true
			s.Templates = append(s.Templates, t)
			continue
		}
		// Template sources pass the read gate (readgate) as secrets files
		// do: --user's permissions, a regular file outside /proc and /sys,
		// capped; the guardrail is checked on Identity with the policy.
		b, id, err := readgate.ReadFileIdentity(t.Source, readgate.Options{User: s.User, Max: MaxTemplateBytes, What: "template source"})
		if err != nil {
			msg := fmt.Sprintf("cannot read %s: %v", t.Source, readgateMsg(err))
			if plan {
				t.Refused = errors.New(msg)
				s.Templates = append(s.Templates, t)
			} else {
				probs.add(where+".source", "%s", msg)
			}
			continue
		}
		t.Identity = id
		t.Text = string(b)
		if err := CheckTemplate(t.Text, names); err != nil {
			probs.add(where+".source", "%s: %v", t.Source, err)
		}
		s.Templates = append(s.Templates, t)
	}
}

// guardrailGate is the guardrail's verdict on a file identity (a seam for
// tests). An error means the guardrail could not be read: then no source
// is read at all (fail closed; the policy check reports it, 77).
var guardrailGate = func() (func(id string) error, error) {
	set, _, err := policy.LoadSet("")
	if err != nil {
		return nil, err
	}
	return set.Guardrail().Gate, nil
}

// MaxTemplateBytes caps a template source.
const MaxTemplateBytes = 1 << 20

// readgateMsg is a read gate error without the path, which the caller names.
func readgateMsg(err error) string {
	var ge *readgate.Error
	if errors.As(err, &ge) {
		return strings.TrimPrefix(ge.Error(), ge.Path+": ")
	}
	return unwrapPath(err).Error()
}

// yamlQuoted is what a YAML parser's error quotes of the input.
var yamlQuoted = regexp.MustCompile("`[^`]*`")

// yamlError is a YAML parser's error without the input it quotes: yaml.v3
// quotes the start of a scalar it cannot place ("cannot unmarshal !!str
// `hvs.CAx...`"), and a file given as a declaration by mistake (or a
// ConfigMap key the admission webhook reads) may hold a secret.
func yamlError(err error) string {
	return yamlQuoted.ReplaceAllString(err.Error(), "(a value, withheld)")
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// CheckTemplate parses a template and runs it once against empty stand-in
// values, so a syntax error or a secret name that is not declared is a
// configuration error (64) before anything is fetched.
func CheckTemplate(text string, declared map[string]bool) error {
	stub := func(name string) ([]byte, error) {
		if !declared[name] {
			return nil, fmt.Errorf("secret %q is not declared", name)
		}
		return []byte("{}"), nil
	}
	t, err := template.New("t").Option("missingkey=error").Funcs(TemplateFuncs(stub)).Parse(text)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, nil); err != nil {
		// A stand-in value cannot satisfy every JSON path; only undeclared
		// names are certain errors.
		if strings.Contains(err.Error(), "is not declared") {
			return err
		}
	}
	return nil
}

func (s *Spec) checkCollisions(probs *Problems) {
	inEnv := map[string]bool{}
	for _, kv := range s.Environ {
		k, _, _ := strings.Cut(kv, "=")
		inEnv[k] = true
	}
	byName := map[string]string{}
	byVar := map[string]string{}
	for _, sec := range s.Secrets {
		if sec.Name == "" {
			continue
		}
		if prev, ok := byName[sec.Name]; ok {
			probs.add(sec.Where, "secret file %q is also declared by %s", sec.Name, prev)
		} else {
			byName[sec.Name] = sec.Where
		}
		for _, v := range []string{sec.EnvVar, sec.ExposeAs} {
			if v == "" {
				continue
			}
			if prev, ok := byVar[v]; ok {
				probs.add(sec.Where, "variable %s is also set by %s", v, prev)
				continue
			}
			byVar[v] = sec.Where
			if inEnv[v] {
				probs.add(sec.Where, "variable %s already exists in the environment; rename it (env: / expose_as:) or unset it", v)
			}
		}
	}
	for _, t := range s.Templates {
		if prev, ok := byName[t.Dest]; ok && t.Dest != "" {
			probs.add(t.Where+".dest", "file %q is also written by %s", t.Dest, prev)
		} else {
			byName[t.Dest] = t.Where
		}
	}
}

// rawUser replaces m's user: with the text as written: YAML reads 010 as
// 8, 0x3e8 and 1e3 as 1000, and the identity must be what the file says
// (identity.Parse then refuses those spellings).
func rawUser(b []byte, m map[string]any) error {
	found := false
	for k := range m {
		found = found || strings.EqualFold(k, "user") // viper's keys are case-insensitive
	}
	if !found {
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Content) == 0 {
		return err
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i].Value
		if !strings.EqualFold(k, "user") {
			continue
		}
		n := root.Content[i+1]
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			return fmt.Errorf("line %d: want UID[:GID] or NAME[:GROUP] as a plain string", n.Line)
		}
		m[k] = n.Value
	}
	return nil
}
