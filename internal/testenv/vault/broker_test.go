package vaulttest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// TestBrokerVaultLeaseAndRotation runs a broker (broker.Run, as cmd/broker
// does) against the in-process Vault, logged in with AppRole, holding
//
//   - db: a leased secret (the leased/ mount, a 3s TTL, renewable),
//   - rot: a KV v2 secret that gets a new version while the broker runs,
//   - still: a KV v2 secret that never changes,
//
// with refresh 2s, for about 8s after the first delivery. It checks, from
// what Vault's HTTP handler saw and from inotify on the directory, that
// the leased secret is read once and its lease renewed before each expiry
// (the broker keeps the credential; it re-reads only near the max TTL),
// leaving exactly one live lease; that the rotated value reaches its file by one
// rename over it (no write into the file in place, no other change); and
// that the unchanged secrets, read again every cycle, cause no write at all.
func TestBrokerVaultLeaseAndRotation(t *testing.T) {
	const ttl = 3 * time.Second
	c := Start(t)
	dbPass, rot1, rot2, still := "dyn-"+randHex(8), "rot-one-"+randHex(8), "rot-two-"+randHex(8), "still-"+randHex(8)
	c.Write(t, "leased/brk", map[string]any{"password": dbPass, "ttl": ttl.String()})
	c.Write(t, "secret/data/brk/rot", map[string]any{"data": map[string]any{"password": rot1}})
	c.Write(t, "secret/data/brk/still", map[string]any{"data": map[string]any{"password": still}})
	c.Policy(t, "brk", `
path "secret/data/brk/*" { capabilities = ["read"] }
path "leased/brk" { capabilities = ["read"] }
`)
	block := approleBlock(t, c, "brk", "brk")
	s := brokerSpec(t, block, 2*time.Second, map[string]string{
		"db":    "vault://leased/brk#password",
		"rot":   "vault://secret/brk/rot#password",
		"still": "vault://secret/brk/still#password",
	})
	logs := &logBuf{}
	b := newBroker(t, s, logs)
	dir := b.Dir().Path

	// Sample Vault's request log every 20ms: when each leased read and
	// each lease renewal happened.
	const leasedRead, renew = "GET /v1/leased/brk", "PUT /v1/sys/leases/renew"
	var (
		mu                sync.Mutex
		readAt, renewedAt []time.Time
	)
	c.Requests.Reset()
	sampleCtx, stopSampling := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case now := <-tick.C:
				var reads, renews int
				for _, r := range c.Requests.Seen() {
					switch r {
					case leasedRead:
						reads++
					case renew:
						renews++
					}
				}
				mu.Lock()
				for len(readAt) < reads {
					readAt = append(readAt, now)
				}
				for len(renewedAt) < renews {
					renewedAt = append(renewedAt, now)
				}
				mu.Unlock()
			}
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()

	waitUntil(t, 15*time.Second, "first delivery", func() bool { ok, _ := b.Ready(); return ok })
	ready := time.Now()
	read := func(name string) string {
		v, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	if read("db") != dbPass || read("rot") != rot1 || read("still") != still {
		t.Fatal("first delivery: a file does not hold its secret")
	}
	ino := func(name string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, name), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	ino0 := map[string]uint64{"db": ino("db"), "rot": ino("rot"), "still": ino("still")}

	w, err := fsnotify.NewWatcher()
	mustDo(t, err)
	defer w.Close()
	mustDo(t, w.Add(dir))
	var events []fsnotify.Event
	var evMu sync.Mutex
	go func() {
		for ev := range w.Events {
			if !strings.HasPrefix(filepath.Base(ev.Name), ".") { // the broker's temporaries and .ready
				evMu.Lock()
				events = append(events, ev)
				evMu.Unlock()
			}
		}
	}()

	time.Sleep(time.Second)
	c.Write(t, "secret/data/brk/rot", map[string]any{"data": map[string]any{"password": rot2}})
	rotated := time.Now()
	waitUntil(t, 6*time.Second, "the rotated value in the file", func() bool {
		v, _ := os.ReadFile(filepath.Join(dir, "rot"))
		return string(v) == rot2
	})
	t.Logf("rotated value in the file %v after the new KV v2 version", time.Since(rotated).Round(10*time.Millisecond))
	time.Sleep(time.Until(ready.Add(8 * time.Second)))

	leaseLeft := metric(t, b, "secretbroker_lease_ttl_remaining_seconds", "secret", "db")
	stopSampling()
	<-sampled
	time.Sleep(100 * time.Millisecond) // let inotify deliver the last events

	// The leased secret: read once, at first delivery; from then on the
	// broker renews its lease at 2/3 of the TTL (providers.LeaseRenewer)
	// instead of replacing the credential, since the lease is far from its
	// max TTL.
	mu.Lock()
	reads, renews := append([]time.Time(nil), readAt...), len(renewedAt)
	mu.Unlock()
	if len(reads) != 1 {
		t.Errorf("leased secret read %d times in ~8s, want 1 (renewed, not re-read):\n%s", len(reads), c.Requests.Summary())
	}
	if renews < 2 {
		t.Errorf("%d lease renewals (%s) in ~8s with a %v TTL, want at least 2:\n%s", renews, renew, ttl, c.Requests.Summary())
	}
	if leaseLeft <= 0 {
		t.Errorf("secretbroker_lease_ttl_remaining_seconds{secret=db} = %v at the end, want > 0", leaseLeft)
	}
	t.Logf("leased secret: %d read, %d lease renewals, %.1fs of lease left at the end", len(reads), renews, leaseLeft)
	ls, err := c.Root.Logical().List("sys/leases/lookup/leased/brk/")
	if err != nil || ls == nil {
		t.Fatalf("listing the leases: %v", err)
	}
	if keys, _ := ls.Data["keys"].([]any); len(keys) != 1 {
		t.Errorf("live leases on leased/brk at the end: %d, want exactly 1", len(keys))
	}

	// Files: rot replaced once by a rename, the others untouched.
	evMu.Lock()
	got := append([]fsnotify.Event(nil), events...)
	evMu.Unlock()
	var rotEvents []fsnotify.Event
	for _, ev := range got {
		switch filepath.Base(ev.Name) {
		case "rot":
			rotEvents = append(rotEvents, ev)
		default:
			t.Errorf("unchanged secret's file touched: %v", ev)
		}
	}
	if len(rotEvents) != 1 || rotEvents[0].Op != fsnotify.Create {
		t.Errorf("rotated file: inotify saw %v, want exactly one CREATE (a rename over it, IN_MOVED_TO)", rotEvents)
	}
	if ino("rot") == ino0["rot"] {
		t.Error("rotated file has its old inode: it was rewritten in place, not replaced")
	}
	for _, name := range []string{"db", "still"} {
		if ino(name) != ino0[name] {
			t.Errorf("%s: inode changed though its value did not", name)
		}
	}
	if read("db") != dbPass || read("still") != still {
		t.Error("an unchanged file lost its value")
	}
	for name, want := range map[string]float64{"db": 1, "rot": 2, "still": 1} {
		if got := metric(t, b, "secretbroker_file_changes_total", "secret", name); got != want {
			t.Errorf("secretbroker_file_changes_total{secret=%q} = %v, want %v", name, got, want)
		}
	}
	kvReads := c.Requests.Tally()["GET /v1/secret/data/brk/still"]
	if kvReads < 3 {
		t.Errorf("the unchanged KV secret was read %d times in ~8s with refresh 2s, want at least 3", kvReads)
	}
	t.Logf("unchanged KV secret read %d times, written 0 times", kvReads)
	noLeak(t, "broker logs", logs.String(), dbPass, rot1, rot2, still)
}

func waitUntil(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func gaps(ts []time.Time) string {
	var out []string
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]).Round(10*time.Millisecond).String())
	}
	return strings.Join(out, " ")
}
