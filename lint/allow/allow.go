// Package allow decides which findings a team has accepted: a baseline of
// existing findings (--baseline, written by --write-baseline) and a config
// file of allow rules, each with a reason and an optional expiry.
//
// Baseline fingerprints are HMAC-SHA256 keyed with a random salt kept in the
// baseline file: equal values give equal fingerprints within one baseline,
// but a fingerprint cannot be checked against guessed values without the
// file, and two baselines share nothing.
package allow

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/moby/patternmatcher"
	"go.yaml.in/yaml/v3"

	"github.com/secretbroker/secretbroker/lint/scan"
	"github.com/secretbroker/secretbroker/lint/walk"
)

// Baseline is the --baseline file.
type Baseline struct {
	Version      int      `json:"version"`
	Salt         string   `json:"salt"`
	Fingerprints []string `json:"fingerprints"`
	set          map[string]bool
	key          []byte
}

// NewBaseline returns an empty baseline with a fresh random salt.
func NewBaseline() (*Baseline, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	b := &Baseline{Version: 1, Salt: hex.EncodeToString(salt)}
	return b, b.init()
}

// LoadBaseline reads a baseline file.
func LoadBaseline(path string) (*Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b Baseline
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("baseline %s: %w", path, err)
	}
	if err := b.init(); err != nil {
		return nil, fmt.Errorf("baseline %s: %w", path, err)
	}
	return &b, nil
}

func (b *Baseline) init() error {
	key, err := hex.DecodeString(b.Salt)
	if err != nil || len(key) < 16 {
		return errors.New("salt must be at least 16 bytes of hex")
	}
	b.key = key
	b.set = map[string]bool{}
	for _, f := range b.Fingerprints {
		b.set[f] = true
	}
	return nil
}

// Fingerprint keys rule, location and value with the salt. The layer digest
// is left out so a rebuild with the same content stays baselined; the value
// is in, so a rotated (new) secret at the same place is reported again.
func (b *Baseline) Fingerprint(f scan.Finding) string {
	m := hmac.New(sha256.New, b.key)
	m.Write([]byte(f.RuleID + "\x00" + f.Image + "\x00" + f.Path + "\x00"))
	m.Write(f.Secret.Reveal())
	return hex.EncodeToString(m.Sum(nil))
}

// Add records f.
func (b *Baseline) Add(f scan.Finding) {
	fp := b.Fingerprint(f)
	if !b.set[fp] {
		b.set[fp] = true
		b.Fingerprints = append(b.Fingerprints, fp)
	}
}

// Has reports whether f is in the baseline.
func (b *Baseline) Has(f scan.Finding) bool { return b.set[b.Fingerprint(f)] }

// Save writes the baseline with mode 0600.
func (b *Baseline) Save(path string) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o600)
}

// Config is the --config file.
type Config struct {
	Allow []Rule `yaml:"allow"`
	// Skips accepts content the scan could not read (judged by a person):
	// by path pattern, with a reason and an optional expiry. Accepted skips
	// are still listed, but no longer make the scan incomplete.
	Skips []Rule `yaml:"skips"`
}

// Rule allows findings that match all of its non-empty fields.
type Rule struct {
	Paths        []string `yaml:"paths"`        // globs, "**" for any depth
	Rules        []string `yaml:"rules"`        // rule ids
	Fingerprints []string `yaml:"fingerprints"` // finding fingerprints (as in JSON/SARIF output)
	Reason       string   `yaml:"reason"`
	Expires      string   `yaml:"expires"` // YYYY-MM-DD; the rule stops applying after that day

	pm      *patternmatcher.PatternMatcher
	expires time.Time
}

// LoadConfig reads and checks an allow config. Every problem is reported.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var errs []error
	for i := range c.Allow {
		r := &c.Allow[i]
		errs = append(errs, r.prepare(path, fmt.Sprintf("allow[%d]", i), "say why this is not a secret or is accepted")...)
		if len(r.Paths)+len(r.Rules)+len(r.Fingerprints) == 0 {
			errs = append(errs, fmt.Errorf("config %s: allow[%d]: give paths, rules or fingerprints; an empty rule would allow everything", path, i))
		}
	}
	for i := range c.Skips {
		r := &c.Skips[i]
		errs = append(errs, r.prepare(path, fmt.Sprintf("skips[%d]", i), "say why the unread content is accepted")...)
		if len(r.Paths) == 0 || len(r.Rules)+len(r.Fingerprints) > 0 {
			errs = append(errs, fmt.Errorf("config %s: skips[%d]: give paths (and only paths)", path, i))
		}
	}
	return &c, errors.Join(errs...)
}

// prepare checks the reason and compiles the expiry and the paths of an
// entry (at where, e.g. "allow[2]").
func (r *Rule) prepare(path, where, why string) []error {
	var errs []error
	if strings.TrimSpace(r.Reason) == "" {
		errs = append(errs, fmt.Errorf("config %s: %s: reason is required (%s)", path, where, why))
	}
	if r.Expires != "" {
		t, err := time.Parse(time.DateOnly, r.Expires)
		if err != nil {
			errs = append(errs, fmt.Errorf("config %s: %s.expires: want YYYY-MM-DD, got %q", path, where, r.Expires))
		}
		r.expires = t.Add(24 * time.Hour)
	}
	if len(r.Paths) > 0 {
		pm, err := patternmatcher.New(r.Paths)
		if err != nil {
			errs = append(errs, fmt.Errorf("config %s: %s.paths: %w", path, where, err))
		}
		r.pm = pm
	}
	return errs
}

// live reports whether r still applies at now; an expired entry is
// reported through expired.
func (r Rule) live(now time.Time, expired func(Rule)) bool {
	if !r.expires.IsZero() && now.After(r.expires) {
		if expired != nil {
			expired(r)
		}
		return false
	}
	return true
}

// AcceptedSkip returns the reason an incomplete skip at path is accepted,
// or "". Expired entries are ignored and reported through expired.
func (c *Config) AcceptedSkip(path string, now time.Time, expired func(Rule)) string {
	for _, r := range c.Skips {
		if r.pm == nil {
			continue
		}
		if ok, err := r.pm.MatchesOrParentMatches(walk.OuterPath(path)); err != nil || !ok || !r.live(now, expired) {
			continue
		}
		return r.Reason
	}
	return ""
}

// Allowed returns the reason f is allowed, or "". Expired rules are ignored
// and reported through expired.
func (c *Config) Allowed(f scan.Finding, now time.Time, expired func(Rule)) string {
	for _, r := range c.Allow {
		if !r.matches(f) || !r.live(now, expired) {
			continue
		}
		return r.Reason
	}
	return ""
}

func (r *Rule) matches(f scan.Finding) bool {
	if len(r.Rules) > 0 && !slices.Contains(r.Rules, f.RuleID) {
		return false
	}
	if len(r.Fingerprints) > 0 && !slices.Contains(r.Fingerprints, f.Fingerprint) {
		return false
	}
	if r.pm != nil {
		ok, err := r.pm.MatchesOrParentMatches(walk.OuterPath(f.Path))
		if err != nil || !ok {
			return false
		}
	}
	return true
}
