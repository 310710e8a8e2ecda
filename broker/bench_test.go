package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/spec"
)

// benchBroker is a broker holding n secrets from the file provider, one
// file each, after its first delivery.
func benchBroker(b *testing.B, n int) (*Broker, string) {
	b.Helper()
	shm, err := os.MkdirTemp("/dev/shm", "broker-bench")
	if err != nil {
		b.Skipf("no /dev/shm: %v", err)
	}
	b.Cleanup(func() { os.RemoveAll(shm) })
	root := b.TempDir()
	s := &spec.Spec{
		Dir: filepath.Join(shm, "s"), DirIsSet: true, Timeout: time.Minute,
		Refresh: time.Minute, MaxStaleness: time.Hour,
		Providers: map[string]map[string]any{"file": {"root": root}},
	}
	for i := range n {
		name := fmt.Sprintf("s%04d", i)
		if err := os.WriteFile(filepath.Join(root, name+".yaml"), fmt.Appendf(nil, "v: fake-%032d\n", i), 0o600); err != nil {
			b.Fatal(err)
		}
		ref, _ := providers.ParseRef("file://" + name + ".yaml#v")
		s.Secrets = append(s.Secrets, spec.Secret{Name: name, Ref: ref, Mode: 0o400})
	}
	br, err := New(s, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.dir.Close() })
	if err := br.Cycle(context.Background(), true); err != nil {
		b.Fatal(err)
	}
	return br, root
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRefreshUnchanged1000 is one refresh cycle over 1,000 file
// secrets when nothing changed upstream: every reference is read, nothing
// is written. It reports CPU seconds and bytes written per cycle.
func BenchmarkRefreshUnchanged1000(b *testing.B) {
	br, _ := benchBroker(b, 1000)
	ctx := context.Background()
	written0 := testutil.ToFloat64(br.m.bytes)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		if err := br.Cycle(ctx, true); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/cycle")
	b.ReportMetric((testutil.ToFloat64(br.m.bytes)-written0)/float64(b.N), "bytes-written/cycle")
}

// BenchmarkRefreshOneChanged1000 is the same cycle when one of the 1,000
// secrets changed: one file replaced.
func BenchmarkRefreshOneChanged1000(b *testing.B) {
	br, root := benchBroker(b, 1000)
	ctx := context.Background()
	written0 := testutil.ToFloat64(br.m.bytes)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		os.WriteFile(filepath.Join(root, "s0000.yaml"), fmt.Appendf(nil, "v: fake-%032d\n", 1_000_000+i), 0o600)
		b.StartTimer()
		if err := br.Cycle(ctx, true); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric((testutil.ToFloat64(br.m.bytes)-written0)/float64(b.N), "bytes-written/cycle")
}
