package vaulttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretbroker/secretbroker/providers"
)

func benchRefs(n int, mounts ...string) []string {
	var out []string
	for i := range n {
		m := mounts[i%len(mounts)]
		out = append(out, fmt.Sprintf("vault://%s/bench/s%02d#password", m, i))
	}
	return out
}

func seedBench(t testing.TB, c *Cluster, n int) {
	for i := range n {
		c.Write(t, fmt.Sprintf("secret/data/bench/s%02d", i), map[string]any{"data": map[string]any{"password": "bench-" + randHex(4), "user": "u"}})
		c.Write(t, fmt.Sprintf("kv1/bench/s%02d", i), map[string]any{"password": "bench-" + randHex(4), "user": "u"})
	}
}

// BenchmarkFetch resolves 1 and 50 secrets on as many distinct KV v2 paths,
// after login and mount detection (both cached by the provider), with the
// default bound of 8 reads in flight, and 50 with 1 in flight (sequential)
// and 50 in flight for comparison; rtt=2ms adds 2ms to every request, as a
// Vault across a network would. The token has a policy granting read on the
// paths (what a deployment uses); the root/ rows use the root token, for
// which Vault skips policy evaluation.
func BenchmarkFetch(b *testing.B) {
	c := Start(b)
	seedBench(b, c, 50)
	c.Policy(b, "bench", `path "secret/data/bench/*" { capabilities = ["read"] }`)
	tokens := map[string]string{"root": c.RootToken, "policy": c.Token(b, "default", "bench")}
	for _, bc := range []struct {
		name string
		n    int
		conc int
		rtt  time.Duration
	}{
		{"rtt=0/1", 1, 8, 0}, {"rtt=0/50", 50, 8, 0}, {"rtt=0/50-sequential", 50, 1, 0},
		{"rtt=0/root/1", 1, 8, 0}, {"rtt=0/root/50", 50, 8, 0},
		{"rtt=2ms/1", 1, 8, 2 * time.Millisecond}, {"rtt=2ms/50", 50, 8, 2 * time.Millisecond},
		{"rtt=2ms/50-sequential", 50, 1, 2 * time.Millisecond}, {"rtt=2ms/50-unbounded", 50, 50, 2 * time.Millisecond},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c.SetLatency(bc.rtt)
			defer c.SetLatency(0)
			tok := tokens["policy"]
			if strings.Contains(bc.name, "/root/") {
				tok = tokens["root"]
			}
			p, _ := openN(b, c, nil, map[string]string{"VAULT_TOKEN": tok}, bc.conc)
			rs := refs(b, benchRefs(bc.n, "secret")...)
			ctx := context.Background()
			for _, r := range p.Fetch(ctx, rs) { // login + mount lookup, then cached
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			c.Requests.Reset()
			b.ResetTimer()
			for b.Loop() {
				for _, r := range p.Fetch(ctx, rs) {
					if r.Err != nil {
						b.Fatal(r.Err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(len(c.Requests.Seen()))/float64(b.N), "requests/op")
		})
	}
}

// BenchmarkConcurrency is the providers.vault.concurrency setting at work:
// with every Vault request delayed by rtt (a Vault on its own cores across
// a network: the delay is a sleep, not CPU), one Fetch of 1, 10 and 50
// distinct paths at concurrency 8, 32 and 64, after login and mount
// lookup. Each iteration times all three, so the ratio of 50 paths to 1
// (50/1-ratio; ideally the number of round trips, ceil(50/concurrency))
// comes from the same run.
//
//	cd internal/testenv/vault && go test -run '^$' -bench Concurrency -benchtime 5x
func BenchmarkConcurrency(b *testing.B) {
	const rtt = 20 * time.Millisecond
	c := Start(b)
	seedBench(b, c, 50)
	c.Policy(b, "bench", `path "secret/data/bench/*" { capabilities = ["read"] }`)
	tok := c.Token(b, "default", "bench")
	for _, conc := range []int{8, 32, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			p, _ := openN(b, c, nil, map[string]string{"VAULT_TOKEN": tok}, conc)
			sets := map[int][]providers.Ref{}
			for _, n := range []int{1, 10, 50} {
				sets[n] = refs(b, benchRefs(n, "secret")...)
			}
			fetch := func(rs []providers.Ref) time.Duration {
				start := time.Now()
				for _, r := range p.Fetch(context.Background(), rs) {
					if r.Err != nil {
						b.Fatal(r.Err)
					}
				}
				return time.Since(start)
			}
			fetch(sets[50]) // login + mount lookup, then cached
			c.SetLatency(rtt)
			defer c.SetLatency(0)
			took := map[int]time.Duration{}
			b.ResetTimer()
			for b.Loop() {
				for _, n := range []int{1, 10, 50} {
					took[n] += fetch(sets[n])
				}
			}
			b.StopTimer()
			for _, n := range []int{1, 10, 50} {
				b.ReportMetric(float64(took[n].Milliseconds())/float64(b.N), fmt.Sprintf("ms/%dpaths", n))
			}
			b.ReportMetric(float64(took[50])/float64(took[1]), "50/1-ratio")
		})
	}
}

// TestRequestCount counts the requests Vault sees for a whole resolution:
// AppRole login, 100 references (two keys each from 50 paths on a KV v2 and
// a KV v1 mount), and the handoff. Target: one login, one mount lookup per
// mount, one read per path, one revocation.
func TestRequestCount(t *testing.T) {
	c := Start(t)
	seedBench(t, c, 50)
	c.Policy(t, "bench", `path "secret/data/bench/*" { capabilities = ["read"] }
path "kv1/bench/*" { capabilities = ["read"] }`)
	mustDo(t, c.Root.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}))
	c.Write(t, "auth/approle/role/bench", map[string]any{"token_policies": []string{"bench"}})
	rid, _ := c.Root.Logical().Read("auth/approle/role/bench/role-id")
	sid := c.Write(t, "auth/approle/role/bench/secret-id", nil)

	var raw []string
	for _, r := range benchRefs(50, "secret", "kv1") {
		raw = append(raw, r, r[:len(r)-len("password")]+"user")
	}
	p, _ := open(t, c, map[string]any{"auth": map[string]any{"method": "approle", "role_id": rid.Data["role_id"], "secret_id": sid.Data["secret_id"]}}, nil)
	c.Requests.Reset()
	res := providers.Resolve(context.Background(), refs(t, raw...), func(context.Context, string) (providers.Provider, error) { return p, nil }, providers.Options{Timeout: 30 * time.Second})
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	if err := p.Handoff(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	tally := c.Requests.Tally()
	lookups := 0
	for k, n := range tally {
		if len(k) > len("GET /v1/sys/internal/ui/mounts/") && k[:len("GET /v1/sys/internal/ui/mounts/")] == "GET /v1/sys/internal/ui/mounts/" {
			lookups += n
		}
	}
	total := len(c.Requests.Seen())
	t.Logf("%d references on 50 paths, 2 mounts: %d requests: %d login, %d mount lookups, %d reads, %d revoke",
		len(raw), total, tally["PUT /v1/auth/approle/login"], lookups, total-2-lookups, tally["PUT /v1/auth/token/revoke-self"])
	if tally["PUT /v1/auth/approle/login"] != 1 || lookups != 2 || tally["PUT /v1/auth/token/revoke-self"] != 1 || total != 1+2+50+1 {
		t.Errorf("want 1 login, 2 mount lookups, 50 reads, 1 revoke; got:\n%s", c.Requests.Summary())
	}
}

// BenchmarkInjectRun times whole `inject` runs (process start, AppRole
// login, mount lookups, reads, files on tmpfs, token revocation, exec of
// true) with 1 secret and with 50 secrets on 50 distinct paths.
func BenchmarkInjectRun(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "inject")
	build := exec.Command("go", "build", "-o", bin, "./cmd/inject")
	build.Dir = "../../.."
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building inject: %v\n%s", err, out)
	}
	c := Start(b)
	seedBench(b, c, 50)
	c.Policy(b, "bench", `path "secret/data/bench/*" { capabilities = ["read"] }
path "kv1/bench/*" { capabilities = ["read"] }`)
	mustDo(b, c.Root.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}))
	c.Write(b, "auth/approle/role/bench", map[string]any{"token_policies": []string{"bench"}, "token_ttl": "5m"})
	rid, _ := c.Root.Logical().Read("auth/approle/role/bench/role-id")
	sid := c.Write(b, "auth/approle/role/bench/secret-id", nil)
	work := b.TempDir()
	writeFile := func(name, content string) string {
		p := filepath.Join(work, name)
		mustDo(b, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	roleFile := writeFile("role-id", rid.Data["role_id"].(string))
	sidFile := writeFile("secret-id", sid.Data["secret_id"].(string))
	auth := fmt.Sprintf("providers:\n  vault:\n    auth: {method: approle, role_id_file: %s, secret_id_file: %s}\n", roleFile, sidFile)
	shm, err := os.MkdirTemp("/dev/shm", "inject-bench")
	mustDo(b, err)
	b.Cleanup(func() { os.RemoveAll(shm) })

	for _, n := range []int{1, 50} {
		var y strings.Builder
		y.WriteString("secrets:\n")
		for i, r := range benchRefs(n, "secret", "kv1") {
			fmt.Fprintf(&y, "  - {name: s%02d, ref: %q}\n", i, r)
		}
		cfg := writeFile(fmt.Sprintf("inject-%d.yaml", n), y.String()+auth)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				cmd := exec.Command(bin, "--config", cfg, "--dir", fmt.Sprintf("%s/%d-%d", shm, n, i), "--", "true")
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "VAULT_ADDR=" + c.Addr, "VAULT_CACERT=" + c.CAFile}
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("inject: %v\n%s", err, out)
				}
			}
		})
	}
}
