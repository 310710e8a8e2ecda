package compose_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/pflag"

	_ "github.com/secretbroker/secretbroker/providers/builtin" // references parse as inject parses them
	"github.com/secretbroker/secretbroker/spec"
)

// loadProject reads compose.yaml (plus overrides) with compose-go, the
// loader docker compose itself uses, so a key it rejects fails here.
func loadProject(t *testing.T, env []string, files ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions(files, cli.WithName("secretbroker-demo"), cli.WithEnv(env), cli.WithWorkingDirectory("."))
	if err != nil {
		t.Fatal(err)
	}
	p, err := cli.ProjectFromOptions(context.Background(), opts)
	if err != nil {
		t.Fatalf("compose-go rejects the example: %v", err)
	}
	return p
}

func TestComposeWiring(t *testing.T) {
	p := loadProject(t, nil, "compose.yaml")
	broker, err := p.GetService("broker")
	if err != nil {
		t.Fatal(err)
	}
	app, err := p.GetService("app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.GetService("vault"); err != nil {
		t.Fatal(err)
	}

	// One memory-backed volume, shared: read-write for the broker, read-only for the app.
	vol, ok := p.Volumes["secrets"]
	if !ok {
		t.Fatal("no secrets volume")
	}
	if vol.DriverOpts["type"] != "tmpfs" || vol.DriverOpts["device"] != "tmpfs" {
		t.Fatalf("secrets volume is not a tmpfs: %v", vol.DriverOpts)
	}
	mount := func(s types.ServiceConfig) types.ServiceVolumeConfig {
		for _, v := range s.Volumes {
			if v.Source == "secrets" {
				return v
			}
		}
		t.Fatalf("%s does not mount the secrets volume", s.Name)
		return types.ServiceVolumeConfig{}
	}
	bm, am := mount(broker), mount(app)
	if bm.Target != spec.DefaultDir || am.Target != spec.DefaultDir {
		t.Fatalf("mount points differ from the default dir: broker %s, app %s", bm.Target, am.Target)
	}
	if bm.ReadOnly || !am.ReadOnly {
		t.Fatalf("want the broker read-write and the app read-only, got broker ro=%v app ro=%v", bm.ReadOnly, am.ReadOnly)
	}

	// The app starts only once the broker is healthy, and the broker probes itself.
	dep, ok := app.DependsOn["broker"]
	if !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Fatalf("app depends_on broker = %+v, want condition service_healthy", app.DependsOn)
	}
	if broker.HealthCheck == nil || !slices.Equal([]string(broker.HealthCheck.Test), []string{"CMD", "/broker", "healthcheck"}) {
		t.Fatalf("broker healthcheck = %+v", broker.HealthCheck)
	}
	if got := env(broker, "INJECT_LISTEN"); !strings.HasSuffix(got, ":9102") {
		t.Fatalf("broker INJECT_LISTEN = %q", got)
	}
	if got := env(app, "DB_PASSWORD_FILE"); got != filepath.Join(spec.DefaultDir, "db_password") {
		t.Fatalf("app DB_PASSWORD_FILE = %q", got)
	}
	for _, s := range []types.ServiceConfig{broker, app} {
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("%s: want read_only and cap_drop ALL", s.Name)
		}
	}

	// The broker's declaration, as mounted, is valid for the spec loader.
	checkBrokerConfig(t, broker, "vault")

	// The images can be swapped for prebuilt ones (as the end-to-end test does).
	p2 := loadProject(t, []string{"SECRETBROKER_IMAGE=x/broker:1", "DEMO_APP_IMAGE=x/app:1"}, "compose.yaml")
	b2, _ := p2.GetService("broker")
	a2, _ := p2.GetService("app")
	if b2.Image != "x/broker:1" || a2.Image != "x/app:1" {
		t.Fatalf("image overrides not honoured: %s %s", b2.Image, a2.Image)
	}
}

// TestComposeFileOverride: compose.file.yaml swaps Vault for the file
// provider and mounts ./upstream, and the result still loads.
func TestComposeFileOverride(t *testing.T) {
	p := loadProject(t, nil, "compose.yaml", "compose.file.yaml")
	broker, err := p.GetService("broker")
	if err != nil {
		t.Fatal(err)
	}
	upstream := false
	for _, v := range broker.Volumes {
		upstream = upstream || (v.Target == "/upstream" && v.ReadOnly && filepath.Base(v.Source) == "upstream")
	}
	if !upstream {
		t.Fatalf("broker does not mount ./upstream read-only at /upstream: %+v", broker.Volumes)
	}
	checkBrokerConfig(t, broker, "file")
}

// checkBrokerConfig loads the declaration the broker service mounts at
// INJECT_CONFIG with the spec loader and checks it names db_password from
// scheme, with no warning.
func checkBrokerConfig(t *testing.T, broker types.ServiceConfig, scheme string) {
	t.Helper()
	cfg := ""
	for _, v := range broker.Volumes {
		if v.Target == env(broker, "INJECT_CONFIG") {
			cfg = v.Source
		}
	}
	if cfg == "" {
		t.Fatalf("INJECT_CONFIG %s is not mounted", env(broker, "INJECT_CONFIG"))
	}
	fs := pflag.NewFlagSet("broker", pflag.ContinueOnError)
	spec.AddFlags(fs)
	fs.Set("config", cfg)
	s, err := spec.Load(fs)
	if err != nil {
		t.Fatalf("%s: %v", cfg, err)
	}
	if len(s.Secrets) != 1 || s.Secrets[0].Name != "db_password" || s.Secrets[0].Ref.Scheme != scheme || len(s.Warnings) > 0 {
		t.Fatalf("%s: secrets %v warnings %v", cfg, s.Secrets, s.Warnings)
	}
}

func env(s types.ServiceConfig, k string) string {
	if v := s.Environment[k]; v != nil {
		return *v
	}
	return ""
}
