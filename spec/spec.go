// Package spec is what a workload declares: where its secrets go, who owns
// them, which policy applies, which secrets and templates to deliver, and
// the settings of each provider and of the broker. It merges flags, INJECT_*
// variables and the config file (in that order of precedence, with viper),
// adds environment references (DB_PASSWORD=vault://...), and validates the
// result, reporting every problem at once with its key path.
package spec

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/secretbroker/secretbroker/identity"
	"github.com/secretbroker/secretbroker/providers"
)

// The defaults of the settings, declared once: the flags, Load and the
// probes (broker healthcheck, inject wait) all take them from here, and
// docs/reference.md lists them.
const (
	DefaultDir          = "/run/secretbroker" // where secrets go when nothing says otherwise
	DefaultListen       = "127.0.0.1:9102"    // the broker's /healthz, /readyz, /metrics
	DefaultTimeout      = 30 * time.Second    // resolving every secret
	DefaultRefresh      = 5 * time.Minute     // the broker re-reads static secrets
	DefaultMaxStaleness = time.Hour           // unrefreshed this long, /readyz fails
)

// Spec is a validated declaration.
type Spec struct {
	Dir        string
	DirIsSet   bool // the user chose Dir; a default dir may fall back elsewhere, a chosen one may not
	User       *identity.Identity
	PolicyFile string
	StripEnv   []string
	EnvSchemes []string
	Secrets    []Secret
	Templates  []Template
	Providers  map[string]map[string]any // config blocks by name, as decoded (without concurrency)
	// Concurrency is each block's concurrency key: requests its provider
	// has in flight at once (absent: providers.DefaultConcurrency).
	Concurrency map[string]int

	Timeout   time.Duration
	AllowDisk bool
	Mount     bool
	Strict    bool

	// How inject starts the app (the broker starts none and ignores them).
	// NoNewPrivileges sets PR_SET_NO_NEW_PRIVS; KeepCapabilities are the
	// capability numbers the bounding set keeps under User (all others are
	// dropped), which is why they need a User.
	NoNewPrivileges  bool
	KeepCapabilities []int

	// Broker settings; inject ignores them.
	Refresh      time.Duration
	MaxStaleness time.Duration
	Listen       string
	Notify       Notify
	WipeOnExit   bool

	ConfigFile string   // "" when none
	Environ    []string // the environment the declaration was read from
	Warnings   []string // unknown keys and the like; --strict turns them into problems
	Logger     *slog.Logger
}

// Secret is one secret to deliver.
type Secret struct {
	Name     string // file name in Dir
	Ref      providers.Ref
	Mode     fs.FileMode
	EnvVar   string // variable that points at the file; "" for none
	ExposeAs string // variable that holds the value itself; "" for none (the default)
	Optional bool   // a not-found secret is skipped
	FromEnv  string // the variable it came from, for environment references
	Where    string // "secrets[2]" or "env DB_PASSWORD", for messages
}

// Template is a Go text/template rendered into Dir.
type Template struct {
	Source   string // path of the template file
	Identity string // "file://" and the real path it was read from, which the guardrail matches
	Dest     string // file name in Dir
	Mode     fs.FileMode
	Text     string
	Where    string
	// Refused is why the read gate refused Source (readgate: --user's
	// permissions, a regular file, the cap, not /proc or /sys). Only
	// LoadPlan leaves a refused template in the spec, so that inject check
	// and --dry-run can give a verdict per source; Load refuses it (64).
	Refused error
	// Withheld: the source was not read, because the guardrail refuses its
	// identity or could not be read itself. Text is empty; the policy
	// check (pipeline.Run.CheckPolicy, 77) refuses the run before any
	// template is rendered.
	Withheld bool
}

// Notify says how the broker tells the app about changed files.
type Notify struct {
	Signal  string   `mapstructure:"signal"`
	PIDFile string   `mapstructure:"pid_file"`
	Command []string `mapstructure:"command"`
}

// ProviderEnv returns what the provider for a config block needs to build
// itself.
func (s *Spec) ProviderEnv(block string) providers.Env {
	return providers.Env{
		Config:  s.Providers[block],
		Getenv:  s.Getenv,
		User:    s.User,
		Logger:  s.logger(),
		Timeout: s.Timeout,
		// Relative paths in a provider block resolve as template sources do.
		ConfigDir:   s.ConfigDir(),
		Concurrency: s.Concurrency[block],
	}
}

// ConfigDir is the directory of the config file, or the working directory
// when there is none.
func (s *Spec) ConfigDir() string {
	if s.ConfigFile == "" {
		return "."
	}
	return filepath.Dir(s.ConfigFile)
}

func (s *Spec) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Getenv looks a variable up in the environment the spec was read from.
func (s *Spec) Getenv(key string) string {
	for i := len(s.Environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(s.Environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Refs lists every secret's reference.
func (s *Spec) Refs() []providers.Ref {
	out := make([]providers.Ref, len(s.Secrets))
	for i, sec := range s.Secrets {
		out[i] = sec.Ref
	}
	return out
}

// Schemes lists the distinct schemes the secrets use.
func (s *Spec) Schemes() []string {
	seen := map[string]bool{}
	var out []string
	for _, sec := range s.Secrets {
		if !seen[sec.Ref.Scheme] {
			seen[sec.Ref.Scheme] = true
			out = append(out, sec.Ref.Scheme)
		}
	}
	return out
}

// Problem is one validation failure.
type Problem struct {
	Path string // key path (secrets[2].ref) or variable name (env DB_PASSWORD)
	Msg  string
}

// Problems is every validation failure of a declaration.
type Problems []Problem

func (p Problems) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the declaration has %d problem(s):", len(p))
	for _, x := range p {
		fmt.Fprintf(&b, "\n  %s: %s", x.Path, x.Msg)
	}
	return b.String()
}

func (p *Problems) add(path, format string, args ...any) {
	*p = append(*p, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// environ is a seam for tests.
var environ = os.Environ
