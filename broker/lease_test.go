package broker

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/providers/vault"
	"github.com/secretbroker/secretbroker/secret"
	"github.com/secretbroker/secretbroker/spec"
)

// leased is a provider with leases, standing in for Vault's dynamic
// secrets: every read is a new credential with a 90s lease. It counts the
// reads and the Lifecycle calls the broker makes.
type leased struct {
	mu                     sync.Mutex
	reads                  map[string]int
	handoffs, keeps, close int
	supervised             bool
	renewTTL               time.Duration // what RenewLease grants; 0: renewal fails
	renewals               int
	// gates, when set, make Handoff and Fetch block until they are closed
	gateHandoff, gateFetch chan struct{}
}

var lease = &leased{reads: map[string]int{}}

func init() {
	// vault's grammar, identity and credentials, with the fake behind them.
	reg := vault.Descriptor()
	reg.New = func(context.Context, providers.Env) (providers.Provider, error) { return lease, nil }
	providers.Register(reg)
}

func (l *leased) Fetch(ctx context.Context, refs []providers.Ref) []providers.Result {
	l.mu.Lock()
	gate := l.gateFetch
	l.mu.Unlock()
	if gate != nil {
		<-gate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]providers.Result, len(refs))
	for i, r := range refs {
		l.reads[r.Canonical()]++
		out[i].Secret = providers.Secret{
			Value:   secret.FromString(fmt.Sprintf("user-%d-fake", l.reads[r.Canonical()])),
			LeaseID: "database/creds/app/" + fmt.Sprint(l.reads[r.Canonical()]), LeaseTTL: 90 * time.Second, Renewable: true,
		}
	}
	return out
}

func (l *leased) Handoff(_ context.Context, supervised bool) error {
	l.mu.Lock()
	l.handoffs++
	l.supervised = supervised
	gate := l.gateHandoff
	l.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return nil
}

func (l *leased) Keep(ctx context.Context) {
	l.mu.Lock()
	l.keeps++
	l.mu.Unlock()
	<-ctx.Done()
}

func (l *leased) RenewLease(_ context.Context, id string) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.renewTTL == 0 {
		return 0, fmt.Errorf("lease %s cannot be renewed here", id)
	}
	l.renewals++
	return l.renewTTL, nil
}

func (l *leased) Close(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.close++
	return nil
}

// leasedFixture has the file secret a and the leased secret db.
func leasedFixture(t *testing.T) *fixture {
	f := newFixture(t, "a: alpha-fake\n", "a")
	ref, _ := providers.ParseRef("vault://database/creds/app")
	f.s.Secrets = append(f.s.Secrets, spec.Secret{Name: "db", Ref: ref, Mode: 0o400})
	return f
}

func TestLeasedSecretReadBeforeTwoThirdsOfItsTTL(t *testing.T) {
	lease.mu.Lock()
	lease.reads, lease.handoffs, lease.keeps, lease.close = map[string]int{}, 0, 0, 0
	lease.mu.Unlock()
	f := leasedFixture(t)
	f.s.WipeOnExit = true
	f.s.Refresh = 5 * time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := f.delivered(ctx, Options{})
	waitFor(t, func() bool { lease.mu.Lock(); defer lease.mu.Unlock(); return lease.keeps == 1 })
	if lease.handoffs != 1 || !lease.supervised {
		t.Fatalf("handoffs=%d supervised=%v: the broker stays, so Handoff(supervised=true) once", lease.handoffs, lease.supervised)
	}
	var dbItem, fileItem *item
	for _, it := range b.items {
		if it.ref.Scheme == "vault" {
			dbItem = it
		} else {
			fileItem = it
		}
	}
	if d := dbItem.next.Sub(f.now()); d != 60*time.Second {
		t.Fatalf("leased secret next read in %v, want 60s (2/3 of 90s)", d)
	}
	if d := fileItem.next.Sub(f.now()); d < 270*time.Second || d > 330*time.Second {
		t.Fatalf("static secret next read in %v, want refresh 5m ±10%%", d)
	}
	f.advance(30 * time.Second)
	body := testutil.CollectAndCount(b.m, "secretbroker_lease_ttl_remaining_seconds")
	if body != 1 {
		t.Fatalf("lease TTL series: %d, want 1", body)
	}
	if err := testutil.CollectAndCompare(b.m, strings.NewReader(`
# HELP secretbroker_lease_ttl_remaining_seconds Lease time left for leased secrets, as of the last read.
# TYPE secretbroker_lease_ttl_remaining_seconds gauge
secretbroker_lease_ttl_remaining_seconds{secret="db"} 60
`), "secretbroker_lease_ttl_remaining_seconds"); err != nil {
		t.Fatal(err)
	}
	// At 61s only the leased secret is due: one read, one replaced file.
	f.advance(31 * time.Second)
	if err := b.Cycle(ctx, false); err != nil {
		t.Fatal(err)
	}
	if lease.reads["vault://database/creds/app"] != 2 || f.read("db") != "user-2-fake" {
		t.Fatalf("reads=%v db=%q", lease.reads, f.read("db"))
	}
	if n := testutil.ToFloat64(b.m.changes.WithLabelValues("a")); n != 1 {
		t.Fatalf("the static secret was written again (%v) though not due", n)
	}
	if err := b.shutdown(); err != nil {
		t.Fatal(err)
	}
	if lease.close != 1 {
		t.Fatalf("Close calls = %d, want 1 with wipe_on_exit", lease.close)
	}
}

// A renewable lease is renewed at 2/3 of its TTL, keeping the credential and
// its file; only when renewal stops extending it (the max TTL is near) is
// the secret read again.
func TestLeaseRenewedUntilMaxTTLThenReRead(t *testing.T) {
	lease.mu.Lock()
	lease.reads, lease.renewals, lease.renewTTL = map[string]int{}, 0, 90*time.Second
	lease.mu.Unlock()
	defer func() { lease.mu.Lock(); lease.renewTTL = 0; lease.mu.Unlock() }()
	f := leasedFixture(t)
	f.s.Refresh = 5 * time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := f.delivered(ctx, Options{})
	for i := 0; i < 3; i++ { // three renewals, each 61s after the last
		f.advance(61 * time.Second)
		if err := b.Cycle(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	lease.mu.Lock()
	reads, renewals := lease.reads["vault://database/creds/app"], lease.renewals
	lease.mu.Unlock()
	if reads != 1 || renewals != 3 || f.read("db") != "user-1-fake" {
		t.Fatalf("reads=%d renewals=%d db=%q; want 1 read, 3 renewals, the first credential kept", reads, renewals, f.read("db"))
	}
	// Near the max TTL Vault grants less than what is left: re-read.
	lease.mu.Lock()
	lease.renewTTL = 10 * time.Second
	lease.mu.Unlock()
	f.advance(61 * time.Second)
	if err := b.Cycle(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := f.read("db"); got != "user-2-fake" {
		t.Fatalf("db = %q after the lease stopped extending, want a fresh credential", got)
	}
}

// TestHandlersAnswerWhileAProviderHangs blocks the provider's handoff (a
// network call revoking a login token) during the first delivery, then its
// fetch during a refresh: /readyz and /metrics answer at once both times.
func TestHandlersAnswerWhileAProviderHangs(t *testing.T) {
	handoff, fetch := make(chan struct{}), make(chan struct{})
	lease.mu.Lock()
	lease.reads, lease.handoffs, lease.keeps, lease.close = map[string]int{}, 0, 0, 0
	lease.gateHandoff = handoff
	lease.mu.Unlock()
	defer func() {
		lease.mu.Lock()
		lease.gateHandoff, lease.gateFetch = nil, nil
		lease.mu.Unlock()
	}()
	f := leasedFixture(t)
	b := f.broker(Options{})
	h := b.Handler()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ask := func(path string) (int, string) {
		t.Helper()
		type answer struct {
			code int
			body string
		}
		got := make(chan answer, 1)
		go func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
			got <- answer{w.Code, w.Body.String()}
		}()
		select {
		case a := <-got:
			return a.code, a.body
		case <-time.After(2 * time.Second):
			t.Fatalf("%s did not answer while the provider hangs", path)
			return 0, ""
		}
	}

	done := make(chan error, 1)
	go func() { done <- b.Cycle(ctx, true) }()
	waitFor(t, func() bool { lease.mu.Lock(); defer lease.mu.Unlock(); return lease.handoffs == 1 })
	if code, body := ask("/readyz"); code != 200 {
		t.Errorf("/readyz during the handoff: %d %q, want 200 (the files are delivered)", code, body)
	}
	if code, body := ask("/metrics"); code != 200 || !strings.Contains(body, "secretbroker_ready 1") {
		t.Errorf("/metrics during the handoff: %d, ready gauge missing or 0", code)
	}
	close(handoff)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	lease.mu.Lock()
	lease.gateFetch = fetch
	lease.mu.Unlock()
	go func() { done <- b.Cycle(ctx, true) }()
	time.Sleep(50 * time.Millisecond) // let the cycle reach the fetch
	if code, body := ask("/readyz"); code != 200 {
		t.Errorf("/readyz during a hanging fetch: %d %q", code, body)
	}
	if code, _ := ask("/metrics"); code != 200 {
		t.Errorf("/metrics during a hanging fetch: %d", code)
	}
	close(fetch)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
