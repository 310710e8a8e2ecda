package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// loadRun loads as inject's run command does: with its two start flags
// declared beside AddFlags's.
func loadRun(t *testing.T, config string, env []string, args ...string) (*Spec, error) {
	t.Helper()
	old := addRunFlags
	addRunFlags = func(f *pflag.FlagSet) {
		f.Bool("no-new-privileges", false, "")
		f.StringSlice("keep-capabilities", nil, "")
	}
	defer func() { addRunFlags = old }()
	return load(t, config, env, args...)
}

// TestStartSettings: no_new_privileges and keep_capabilities come from a
// flag, INJECT_*, or the file, in that order, like every other setting.
func TestStartSettings(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		env, args    []string
		nnp          bool
		keep         []int
	}{
		{name: "default"},
		{name: "file", config: "user: \"1000\"\nno_new_privileges: true\nkeep_capabilities: [CAP_NET_BIND_SERVICE, net_raw]\n", nnp: true, keep: []int{10, 13}},
		{name: "file, comma string", config: "user: \"1000\"\nkeep_capabilities: CAP_NET_BIND_SERVICE,CAP_CHOWN\n", keep: []int{10, 0}},
		{name: "env", env: []string{"INJECT_USER=1000", "INJECT_NO_NEW_PRIVILEGES=true", "INJECT_KEEP_CAPABILITIES=cap_net_bind_service"}, nnp: true, keep: []int{10}},
		{name: "env beats file", config: "user: \"1000\"\nno_new_privileges: true\nkeep_capabilities: [CAP_CHOWN]\n", env: []string{"INJECT_NO_NEW_PRIVILEGES=false", "INJECT_KEEP_CAPABILITIES=CAP_NET_RAW"}, keep: []int{13}},
		{name: "empty env is unset", config: "no_new_privileges: true\n", env: []string{"INJECT_NO_NEW_PRIVILEGES="}, nnp: true},
		{name: "flag beats env", env: []string{"INJECT_USER=1000", "INJECT_NO_NEW_PRIVILEGES=false", "INJECT_KEEP_CAPABILITIES=CAP_NET_RAW"}, args: []string{"--no-new-privileges", "--keep-capabilities", "CAP_CHOWN"}, nnp: true, keep: []int{0}},
		{name: "flag false beats file", config: "no_new_privileges: true\n", args: []string{"--no-new-privileges=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := loadRun(t, tc.config, tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if s.NoNewPrivileges != tc.nnp || !slices.Equal(s.KeepCapabilities, tc.keep) {
				t.Errorf("no_new_privileges %v keep %v, want %v %v", s.NoNewPrivileges, s.KeepCapabilities, tc.nnp, tc.keep)
			}
		})
	}
}

// TestStartSettingsRefused: what the flags refused is refused from every
// source (64, via Problems), and a yes-or-no setting is never read as
// false because it could not be parsed.
func TestStartSettingsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		env, args    []string
		want         string
	}{
		{name: "unknown capability in the file", config: "user: \"1000\"\nkeep_capabilities: [CAP_NET_BIND_SERVIC]\n", want: `keep_capabilities: unknown capability "CAP_NET_BIND_SERVIC"`},
		{name: "unknown capability in env", env: []string{"INJECT_USER=1000", "INJECT_KEEP_CAPABILITIES=CAP_FOO"}, want: `keep_capabilities: unknown capability "CAP_FOO"`},
		{name: "unknown capability in a flag", args: []string{"--user", "1000", "--keep-capabilities", "bogus"}, want: `keep_capabilities: unknown capability "bogus"`},
		{name: "keep without user (file)", config: "keep_capabilities: [CAP_NET_RAW]\n", want: "keep_capabilities: needs user"},
		{name: "keep without user (env)", env: []string{"INJECT_KEEP_CAPABILITIES=CAP_NET_RAW"}, want: "keep_capabilities: needs user"},
		{name: "not a bool in env", env: []string{"INJECT_NO_NEW_PRIVILEGES=yes"}, want: `no_new_privileges: "yes" is not true or false`},
		{name: "not a bool in the file", config: "no_new_privileges: yes\n", want: `no_new_privileges: "yes" is not true or false`},
		{name: "a number in the file", config: "no_new_privileges: 2\n", want: "no_new_privileges: want true or false, got 2"},
		{name: "other bools too", env: []string{"INJECT_ALLOW_DISK=on"}, want: `allow_disk: "on" is not true or false`},
		{name: "typo", config: "no_new_privilege: true\n", want: "no_new_privilege: unknown key; did you mean no_new_privileges?"},
		{name: "typo, keep", config: "keep_capabilties: [CAP_NET_RAW]\n", want: "keep_capabilties: unknown key; did you mean keep_capabilities?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadRun(t, tc.config, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestYAMLErrorsWithholdTheInput: a file given as the declaration by
// mistake may be a secret (a token file), and a ConfigMap key the webhook
// reads may hold anything; yaml.v3 quotes the start of a scalar it cannot
// place, which the error must not carry.
func TestYAMLErrorsWithholdTheInput(t *testing.T) {
	const canary = "hvs.s3cr3t-canary"
	for _, doc := range []string{canary + "\n", "- " + canary + "\n", "[" + canary + "]\n"} {
		_, err := load(t, doc, nil)
		if err == nil || !strings.Contains(err.Error(), "not valid YAML") || strings.Contains(err.Error(), canary[:7]) {
			t.Errorf("Load(%q): %v", doc, err)
		}
		_, err = DeclaredSecrets([]byte(doc), nil, nil)
		if err == nil || strings.Contains(err.Error(), canary[:7]) {
			t.Errorf("DeclaredSecrets(%q): %v", doc, err)
		}
	}
}

// TestGuardrailBeforeTemplateRead: a template source the guardrail
// forbids, or any source while the guardrail cannot be read, is not read
// (Withheld, no text, no problem quoting it); the policy check refuses
// the run (77).
func TestGuardrailBeforeTemplateRead(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "t.tmpl")
	os.WriteFile(src, []byte("{{ hunter2_s3cr3t }}"), 0o600)
	cfg := "templates:\n  - {source: " + src + ", dest: out}\n"
	old := guardrailGate
	defer func() { guardrailGate = old }()
	for name, gate := range map[string]func() (func(string) error, error){
		"denied":     func() (func(string) error, error) { return func(string) error { return errors.New("denied") }, nil },
		"unreadable": func() (func(string) error, error) { return nil, errors.New("guardrail: bad") },
	} {
		guardrailGate = gate
		s, err := load(t, cfg, nil)
		if err != nil || len(s.Templates) != 1 || !s.Templates[0].Withheld || s.Templates[0].Text != "" || s.Templates[0].Identity != "file://"+src {
			t.Errorf("%s: %+v, %v", name, s, err)
		}
	}
	guardrailGate = func() (func(string) error, error) { return func(string) error { return nil }, nil }
	if _, err := load(t, cfg, nil); err == nil || !strings.Contains(err.Error(), "not defined") {
		t.Errorf("allowed: the source is read and checked: %v", err)
	}
}
