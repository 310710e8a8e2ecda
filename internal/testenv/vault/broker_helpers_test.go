package vaulttest

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretbroker/secretbroker/broker"
	"github.com/secretbroker/secretbroker/providers"
	sbvault "github.com/secretbroker/secretbroker/providers/vault"
	"github.com/secretbroker/secretbroker/spec"
)

// The broker finds providers in the registry, as cmd/broker does through
// providers/builtin; only the vault provider is registered here, so this
// module does not link the AWS and 1Password SDKs.
func init() {
	providers.Register(sbvault.Descriptor())
}

// approleBlock enables AppRole (once per cluster), creates a role with the
// given policies and returns a providers.vault block that logs in with it,
// as a deployed broker would.
func approleBlock(t testing.TB, c *Cluster, role string, policies ...string) map[string]any {
	t.Helper()
	auths, err := c.Root.Sys().ListAuth()
	mustDo(t, err)
	if _, ok := auths["approle/"]; !ok {
		mustDo(t, c.Root.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}))
	}
	c.Write(t, "auth/approle/role/"+role, map[string]any{"token_policies": policies, "token_ttl": "1h"})
	rid, err := c.Root.Logical().Read("auth/approle/role/" + role + "/role-id")
	mustDo(t, err)
	sid := c.Write(t, "auth/approle/role/"+role+"/secret-id", nil)
	return map[string]any{
		"address": c.Addr, "ca_file": c.CAFile,
		"auth": map[string]any{"method": "approle", "role_id": rid.Data["role_id"], "secret_id": sid.Data["secret_id"]},
	}
}

// brokerSpec is the spec cmd/broker would build from a config file naming
// these secrets, writing into a fresh directory on /dev/shm.
func brokerSpec(t testing.TB, block map[string]any, refresh time.Duration, secrets map[string]string) *spec.Spec {
	t.Helper()
	shm, err := os.MkdirTemp("/dev/shm", "broker-vault")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	s := &spec.Spec{
		Dir: filepath.Join(shm, "s"), DirIsSet: true, Timeout: 30 * time.Second,
		Refresh: refresh, MaxStaleness: time.Hour,
		Providers: map[string]map[string]any{"vault": block},
	}
	for name, raw := range secrets {
		ref, err := providers.ParseRef(raw)
		mustDo(t, err)
		s.Secrets = append(s.Secrets, spec.Secret{Name: name, Ref: ref, Mode: 0o400})
	}
	return s
}

// newBroker builds a broker from s with its logs in logs.
func newBroker(t testing.TB, s *spec.Spec, logs *logBuf) *broker.Broker {
	t.Helper()
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s.Logger = log
	b, err := broker.New(s, log, broker.Options{})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	return b
}

// metric reads one series of the broker's registry: name with the label
// pairs given ("secret", "db"); 0 when absent.
func metric(t testing.TB, b *broker.Broker, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := b.Registry().Gather()
	mustDo(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatus reads a "VmRSS"-style line of /proc/self/status, in MiB.
func procStatus(key string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
