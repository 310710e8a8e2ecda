package vaulttest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secretbroker/secretbroker/providers"
)

// BenchmarkBrokerVault200 is one broker refresh cycle over 200 secrets read
// from the in-process Vault when nothing changed upstream, through the
// broker package's API as cmd/broker drives it (broker.New, then Cycle):
// AppRole login with a policy-scoped token, the vault provider from the
// registry, files on /dev/shm. Two shapes:
//
//   - 200paths: 200 KV v2 paths, one key each (200 Vault reads a cycle);
//   - 100paths-x2keys: 100 KV v2 paths, two keys each (the provider reads
//     each path once: 100 Vault reads a cycle).
//
// fetch-only is the vault provider's Fetch of the same 200 references
// without the broker, so that the broker's own share of the CPU shows.
//
// Reported per cycle: cpu-s/cycle (getrusage of the whole test process,
// which also runs Vault serving the reads: an upper bound for the broker),
// bytes-written/cycle (the broker's secretbroker_written_bytes_total; target
// 0), vault-requests/cycle (what Vault's HTTP handler saw). And after the
// cycles: broker-heap-MiB, the live heap after GC minus the live heap
// before broker.New (the broker's items and digests, the metrics registry,
// the vault provider's client and its TLS connections, and whatever Vault
// itself keeps for those connections and requests); process-rss-MiB, VmRSS
// of the whole test process (Vault, the broker and the test binary).
func BenchmarkBrokerVault200(b *testing.B) {
	c := Start(b)
	for i := range 200 {
		c.Write(b, fmt.Sprintf("secret/data/bench/b%03d", i), map[string]any{"data": map[string]any{"password": "bench-" + randHex(8), "user": fmt.Sprintf("u%03d", i)}})
	}
	c.Policy(b, "broker-bench", `path "secret/data/bench/*" { capabilities = ["read"] }`)
	block := approleBlock(b, c, "broker-bench", "broker-bench")

	shapes := []struct {
		name  string
		paths int
		keys  []string
	}{
		{"200paths", 200, []string{"password"}},
		{"100paths-x2keys", 100, []string{"password", "user"}},
	}
	for _, sh := range shapes {
		secrets := map[string]string{}
		for i := range sh.paths {
			for _, k := range sh.keys {
				secrets[fmt.Sprintf("b%03d-%s", i, k)] = fmt.Sprintf("vault://secret/bench/b%03d#%s", i, k)
			}
		}
		b.Run(sh.name, func(b *testing.B) {
			ctx := context.Background()
			logs := &logBuf{}
			s := brokerSpec(b, block, time.Minute, secrets)
			heap0 := liveHeap()
			br := newBroker(b, s, logs)
			b.Cleanup(func() { br.Dir().Close() })
			// First delivery, then two cycles: the first delivery's handoff
			// revokes the login token (no lease depends on it), so the
			// next cycle logs in again; after that the token is kept.
			for range 3 {
				if err := br.Cycle(ctx, true); err != nil {
					b.Fatal(err)
				}
			}
			written0 := metric(b, br, "secretbroker_written_bytes_total")
			c.Requests.Reset()
			cpu0 := cpuTime()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := br.Cycle(ctx, true); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric((cpuTime()-cpu0).Seconds()/n, "cpu-s/cycle")
			b.ReportMetric((metric(b, br, "secretbroker_written_bytes_total")-written0)/n, "bytes-written/cycle")
			b.ReportMetric(float64(len(c.Requests.Seen()))/n, "vault-requests/cycle")
			b.ReportMetric(float64(liveHeap()-heap0)/(1<<20), "broker-heap-MiB")
			b.ReportMetric(procStatus("VmRSS"), "process-rss-MiB")
			b.Logf("%d secrets, %d cycles: %s", len(secrets), b.N, requestKinds(c))
			noLeak(b, "broker logs", logs.String())
			runtime.KeepAlive(br)
		})
	}

	b.Run("fetch-only", func(b *testing.B) {
		p, _ := open(b, c, block, nil)
		var raw []string
		for i := range 200 {
			raw = append(raw, fmt.Sprintf("vault://secret/bench/b%03d#password", i))
		}
		rs := refs(b, raw...)
		ctx := context.Background()
		fetch := func() {
			res := providers.Resolve(ctx, rs, func(context.Context, string) (providers.Provider, error) { return p, nil }, providers.Options{Timeout: 30 * time.Second})
			if len(res.Errors) > 0 {
				b.Fatalf("errors: %v", res.Errors)
			}
			for _, s := range res.Secrets {
				s.Value.Wipe()
			}
		}
		fetch()
		c.Requests.Reset()
		cpu0 := cpuTime()
		b.ResetTimer()
		for b.Loop() {
			fetch()
		}
		b.StopTimer()
		b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/cycle")
		b.ReportMetric(float64(len(c.Requests.Seen()))/float64(b.N), "vault-requests/cycle")
	})
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// requestKinds summarises the recorded requests by method and first two
// path segments ("GET /v1/secret x1000").
func requestKinds(c *Cluster) string {
	n := map[string]int{}
	var order []string
	for _, r := range c.Requests.Seen() {
		k := r
		if parts := strings.SplitN(r, "/", 4); len(parts) == 4 {
			k = strings.Join(parts[:3], "/")
		}
		if n[k] == 0 {
			order = append(order, k)
		}
		n[k]++
	}
	sort.Strings(order)
	var out []string
	for _, k := range order {
		out = append(out, fmt.Sprintf("%s x%d", k, n[k]))
	}
	return strings.Join(out, ", ")
}

// BenchmarkBrokerVault200Process runs the real broker binary (cmd/broker,
// built CGO_ENABLED=0 with every built-in provider, as shipped) holding 200
// secrets on 200 KV v2 paths of the in-process Vault, AppRole login, files
// on /dev/shm, and measures that process alone: each op is one SIGHUP (a
// full refresh of all 200 secrets) waited for through /metrics. Reported:
// the broker process's CPU per cycle (utime+stime from /proc/PID/stat),
// its VmRSS after the cycles (and RssAnon, RssFile), bytes written per
// cycle with nothing changed, and Vault requests per cycle. BROKER_TAGS
// passes build tags (noonepassword_sdk, noawssm, ...) to the build;
// BROKER_GOGC and BROKER_GOMEMLIMIT set GOGC and GOMEMLIMIT for the broker.
func BenchmarkBrokerVault200Process(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "broker")
	args := []string{"build", "-trimpath", "-o", bin}
	if tags := os.Getenv("BROKER_TAGS"); tags != "" { // e.g. noonepassword_sdk, noawssm,noonepassword
		args = append(args, "-tags", tags)
	}
	build := exec.Command("go", append(args, "./cmd/broker")...)
	build.Dir = "../../.."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building broker: %v\n%s", err, out)
	}
	c := Start(b)
	for i := range 200 {
		c.Write(b, fmt.Sprintf("secret/data/bench/b%03d", i), map[string]any{"data": map[string]any{"password": "bench-" + randHex(8)}})
	}
	c.Policy(b, "broker-bench", `path "secret/data/bench/*" { capabilities = ["read"] }`)
	block := approleBlock(b, c, "broker-bench", "broker-bench")
	auth := block["auth"].(map[string]any)

	work := b.TempDir()
	put := func(name, content string) string {
		p := filepath.Join(work, name)
		mustDo(b, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	var y strings.Builder
	y.WriteString("secrets:\n")
	for i := range 200 {
		fmt.Fprintf(&y, "  - {name: b%03d, ref: \"vault://secret/bench/b%03d#password\"}\n", i, i)
	}
	fmt.Fprintf(&y, "providers:\n  vault:\n    auth: {method: approle, role_id_file: %s, secret_id_file: %s}\n",
		put("role-id", auth["role_id"].(string)), put("secret-id", auth["secret_id"].(string)))
	cfg := put("broker.yaml", y.String())
	shm, err := os.MkdirTemp("/dev/shm", "broker-vault-proc")
	mustDo(b, err)
	b.Cleanup(func() { os.RemoveAll(shm) })
	sock := filepath.Join(shm, "b.sock")

	cmd := exec.Command(bin, "--config", cfg, "--dir", filepath.Join(shm, "s"), "--listen", sock, "--refresh", "1h", "--log-level", "warn")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "VAULT_ADDR=" + c.Addr, "VAULT_CACERT=" + c.CAFile}
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} { // BROKER_GOGC=50 tunes the broker, not this process
		if v := os.Getenv("BROKER_" + k); v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	logs := &logBuf{}
	cmd.Stdout, cmd.Stderr = logs, logs
	mustDo(b, cmd.Start())
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		noLeak(b, "broker output", logs.String())
	})
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	scrape := func(name string) float64 {
		resp, err := hc.Get("http://broker/metrics")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return -1
	}
	waitCycles := func(n float64) {
		deadline := time.Now().Add(30 * time.Second)
		for scrape("secretbroker_refresh_cycles_total") < n {
			if time.Now().After(deadline) || cmd.ProcessState != nil {
				b.Fatalf("broker did not reach %v cycles:\n%s", n, logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCycles(1) // first delivery
	// One warm-up refresh (the first delivery's handoff revoked the login
	// token, no lease depending on it, so this one logs in again).
	mustDo(b, cmd.Process.Signal(syscall.SIGHUP))
	waitCycles(2)
	cycles0 := scrape("secretbroker_refresh_cycles_total")
	written0 := scrape("secretbroker_written_bytes_total")
	cpu0 := procCPU(b, cmd.Process.Pid)
	c.Requests.Reset()
	b.ResetTimer()
	i := 0.0
	for b.Loop() {
		i++
		mustDo(b, cmd.Process.Signal(syscall.SIGHUP))
		waitCycles(cycles0 + i)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric((procCPU(b, cmd.Process.Pid)-cpu0).Seconds()/n, "broker-cpu-s/cycle")
	b.ReportMetric((scrape("secretbroker_written_bytes_total")-written0)/n, "bytes-written/cycle")
	b.ReportMetric(float64(len(c.Requests.Seen()))/n, "vault-requests/cycle")
	status := readStatus(b, cmd.Process.Pid)
	b.ReportMetric(status["VmRSS"], "broker-rss-MiB")
	b.ReportMetric(status["RssAnon"], "broker-rss-anon-MiB")
	b.ReportMetric(status["RssFile"], "broker-rss-file-MiB")
	b.ReportMetric(status["VmHWM"], "broker-rss-peak-MiB")
	b.Logf("%d cycles: %s", b.N, requestKinds(c))
}

// procCPU is a process's utime+stime from /proc/PID/stat.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	mustDo(b, err)
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64) // field 14
	st, _ := strconv.ParseFloat(f[12], 64) // field 15
	const hz = 100                         // USER_HZ on Linux
	return time.Duration((ut + st) / hz * float64(time.Second))
}

// readStatus reads the kB lines of /proc/PID/status, in MiB.
func readStatus(b *testing.B, pid int) map[string]float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	mustDo(b, err)
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			kb, _ := strconv.ParseFloat(f[0], 64)
			out[k] = kb / 1024
		}
	}
	return out
}
