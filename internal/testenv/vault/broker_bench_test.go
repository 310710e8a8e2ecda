package vaulttest

import (
	"context"
	"fmt"
	"runtime"
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
			b.Logf("%d secrets, requests over %d cycles:\n%s", len(secrets), b.N, c.Requests.Summary())
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
