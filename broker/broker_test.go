package broker

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/providers/file"
	"github.com/secretbroker/secretbroker/spec"
	"github.com/secretbroker/secretbroker/tmpfs"
)

func init() {
	reg := file.Descriptor()
	reg.New = func(_ context.Context, env providers.Env) (providers.Provider, error) {
		var cfg file.Config
		if err := mapstructure.Decode(env.Config, &cfg); err != nil {
			return nil, err
		}
		return file.New(cfg, env.User, env.ConfigDir)
	}
	providers.Register(reg)
}

// fixture is a broker over a file provider root (on disk, the "upstream")
// and a secrets directory on /dev/shm, with a clock the test moves.
type fixture struct {
	t     *testing.T
	root  string
	dir   string
	mu    sync.Mutex
	clock time.Time
	s     *spec.Spec
}

func newFixture(t *testing.T, upstream string, names ...string) *fixture {
	t.Helper()
	shm, err := os.MkdirTemp("/dev/shm", "broker-test")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	f := &fixture{t: t, root: t.TempDir(), dir: filepath.Join(shm, "s"), clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.upstream(upstream)
	f.s = &spec.Spec{
		Dir: f.dir, DirIsSet: true, Timeout: 5 * time.Second,
		Refresh: time.Minute, MaxStaleness: 10 * time.Minute,
		Providers: map[string]map[string]any{"file": {"root": f.root}},
	}
	for _, n := range names {
		key, _, _ := strings.Cut(n, "@") // name@key reads another key
		ref, err := providers.ParseRef("file://up.yaml#" + key)
		if err != nil {
			t.Fatal(err)
		}
		name := n
		if i := strings.Index(n, "@"); i >= 0 {
			name = n[i+1:]
		}
		f.s.Secrets = append(f.s.Secrets, spec.Secret{Name: name, Ref: ref, Mode: 0o400, Where: "secrets[" + name + "]"})
	}
	return f
}

func (f *fixture) upstream(content string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.root, "up.yaml"), []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.clock }
func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.clock = f.clock.Add(d)
	f.mu.Unlock()
}

func (f *fixture) broker(o Options) *Broker {
	f.t.Helper()
	o.Now = f.now
	b, err := New(f.s, slog.New(slog.NewTextHandler(io.Discard, nil)), o)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { b.dir.Close() })
	return b
}

// delivered is a broker after its first delivery (a full cycle).
func (f *fixture) delivered(ctx context.Context, o Options) *Broker {
	f.t.Helper()
	b := f.broker(o)
	if err := b.Cycle(ctx, true); err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) read(name string) string {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

func (f *fixture) inode(name string) uint64 {
	f.t.Helper()
	fi, err := os.Stat(filepath.Join(f.dir, name))
	if err != nil {
		f.t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func written(b *Broker) float64 { return testutil.ToFloat64(b.m.bytes) }

func TestNoChangeWritesNothing(t *testing.T) {
	f := newFixture(t, "a: alpha-fake\nb: beta-fake\n", "a", "b", "a@a2")
	b := f.delivered(context.Background(), Options{})
	if got := f.read("a"); got != "alpha-fake" {
		t.Fatalf("a = %q", got)
	}
	if _, err := os.Stat(filepath.Join(f.dir, tmpfs.ReadyMarker)); err != nil {
		t.Fatalf("no %s after the first delivery: %v", tmpfs.ReadyMarker, err)
	}
	before, ino := written(b), f.inode("a")
	for range 3 {
		f.advance(2 * time.Minute)
		if err := b.Cycle(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	}
	if after := written(b); after != before {
		t.Fatalf("unchanged secrets wrote %v bytes", after-before)
	}
	if f.inode("a") != ino {
		t.Fatal("an unchanged file was replaced")
	}
	if n := testutil.ToFloat64(b.m.cycles); n != 4 {
		t.Fatalf("cycles = %v, want 4", n)
	}
}

func TestChangeReplacesAtomicallyAndNotifies(t *testing.T) {
	f := newFixture(t, "a: alpha-fake\nb: beta-fake\n", "a", "b")
	out := filepath.Join(t.TempDir(), "notified")
	f.s.Notify = spec.Notify{Command: []string{"sh", "-c", `echo "$SECRETBROKER_CHANGED" > "$0"`, out}}
	ctx := context.Background()
	b := f.delivered(ctx, Options{})
	inoA, inoB := f.inode("a"), f.inode("b")
	f.upstream("a: alpha2-fake\nb: beta-fake\n")
	before := written(b)
	f.advance(2 * time.Minute)
	if err := b.Cycle(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := f.read("a"); got != "alpha2-fake" {
		t.Fatalf("a = %q after the upstream change", got)
	}
	if f.inode("a") == inoA {
		t.Fatal("a was rewritten in place, not replaced by rename")
	}
	if f.inode("b") != inoB {
		t.Fatal("b did not change but was replaced")
	}
	if d := written(b) - before; d != float64(len("alpha2-fake")) {
		t.Fatalf("wrote %v bytes, want %d", d, len("alpha2-fake"))
	}
	if n := testutil.ToFloat64(b.m.changes.WithLabelValues("a")); n != 2 {
		t.Fatalf("changes{a} = %v, want 2", n)
	}
	ents, _ := os.ReadDir(f.dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
	waitFor(t, func() bool { b, _ := os.ReadFile(out); return strings.TrimSpace(string(b)) == "a" })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in 2s")
}

func TestFaultKeepsFileUntilMaxStaleness(t *testing.T) {
	f := newFixture(t, "a: alpha-fake\n", "a")
	ctx := context.Background()
	b := f.delivered(ctx, Options{})
	ino := f.inode("a")
	f.upstream("a: [unterminated\n") // the provider now fails (invalid YAML)
	f.advance(2 * time.Minute)
	err := b.Cycle(ctx, false)
	if err == nil || cli.CodeOf(err) != cli.ExitProvider {
		t.Fatalf("Cycle = %v, want a provider failure", err)
	}
	if strings.Contains(err.Error(), "alpha-fake") {
		t.Fatal("the error shows a secret value")
	}
	if f.read("a") != "alpha-fake" || f.inode("a") != ino {
		t.Fatal("the last good file was touched after a fault")
	}
	it := b.items[0]
	if it.failures != 1 || !it.next.After(f.now()) || it.next.Sub(f.now()) > 3*time.Second {
		t.Fatalf("after one failure: failures=%d next in %v; want backoff of about 2s", it.failures, it.next.Sub(f.now()))
	}
	if n := testutil.ToFloat64(b.m.errors.WithLabelValues("file", "failed")) + testutil.ToFloat64(b.m.errors.WithLabelValues("file", "invalid")); n != 1 {
		t.Fatalf("errors metric = %v, want 1", n)
	}
	f.advance(3 * time.Second)
	_ = b.Cycle(ctx, false)
	if d := it.next.Sub(f.now()); it.failures != 2 || d < 3*time.Second {
		t.Fatalf("second failure: failures=%d next in %v, want about 4s", it.failures, d)
	}
	if ok, why := b.Ready(); !ok {
		t.Fatalf("not ready within max_staleness: %s", why)
	}
	f.advance(10 * time.Minute)
	_ = b.Cycle(ctx, false)
	ok, why := b.Ready()
	if ok || !strings.Contains(why, "older than max_staleness") || !strings.Contains(why, "a (") {
		t.Fatalf("Ready = %v %q after max_staleness", ok, why)
	}
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()
	body := get(t, srv.URL+"/metrics", 200)
	if !strings.Contains(body, `secretbroker_secret_last_success_age_seconds{secret="a"} 72`) {
		t.Fatalf("staleness not in metrics:\n%s", grepLines(body, "secretbroker_"))
	}
	get(t, srv.URL+"/readyz", 503)
	if strings.Contains(body, "alpha-fake") {
		t.Fatal("/metrics shows a secret value")
	}
	f.upstream("a: alpha-fake\n")
	f.advance(time.Hour)
	if err := b.Cycle(ctx, false); err != nil {
		t.Fatal(err)
	}
	if ok, why := b.Ready(); !ok {
		t.Fatalf("not ready after recovery: %s", why)
	}
	if f.inode("a") != ino {
		t.Fatal("recovery with the same value replaced the file")
	}
	get(t, srv.URL+"/readyz", 200)
	get(t, srv.URL+"/healthz", 200)
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := httpGet(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s = %d, want %d: %s", url, resp.StatusCode, want, b)
	}
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestDeletedUpstreamKeptUntilMaxStaleness(t *testing.T) {
	f := newFixture(t, "a: alpha-fake\nb: beta-fake\n", "a", "b")
	ctx := context.Background()
	b := f.delivered(ctx, Options{})
	f.upstream("b: beta-fake\n")
	f.advance(2 * time.Minute)
	if err := b.Cycle(ctx, false); err == nil {
		t.Fatal("a deleted secret is not reported")
	}
	if f.read("a") != "alpha-fake" {
		t.Fatal("a deleted secret's file went before max_staleness")
	}
	f.advance(10 * time.Minute)
	_ = b.Cycle(ctx, true)
	if _, err := os.Stat(filepath.Join(f.dir, "a")); !os.IsNotExist(err) {
		t.Fatalf("a deleted secret's file is still there after max_staleness: %v", err)
	}
	if f.read("b") != "beta-fake" {
		t.Fatal("b was touched")
	}
}

func TestFirstDeliveryIncompleteIsNotReady(t *testing.T) {
	f := newFixture(t, "a: alpha-fake\n", "a", "b")
	b := f.broker(Options{})
	if err := b.Cycle(context.Background(), true); err == nil {
		t.Fatal("a missing secret did not fail the cycle")
	}
	if _, err := os.Stat(filepath.Join(f.dir, tmpfs.ReadyMarker)); !os.IsNotExist(err) {
		t.Fatal(".ready written before a complete delivery")
	}
	if ok, why := b.Ready(); ok || !strings.Contains(why, "first delivery pending: b") {
		t.Fatalf("Ready = %v %q", ok, why)
	}
	f.upstream("a: alpha-fake\nb: beta-fake\n")
	f.advance(5 * time.Second)
	if err := b.Cycle(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.Ready(); !ok {
		t.Fatal("not ready after the retry delivered everything")
	}
}

func TestOnceFailsWithProviderCode(t *testing.T) {
	f := newFixture(t, "a: alpha-fake\n", "a", "b")
	b := f.broker(Options{Once: true})
	err := b.Run(context.Background())
	if cli.CodeOf(err) != cli.ExitProvider || !strings.Contains(err.Error(), "file://up.yaml#b") {
		t.Fatalf("Run = %v, want 69 naming the reference", err)
	}
}

func TestAdoptsExistingFiles(t *testing.T) {
	f := newFixture(t, "a: alpha-fake\nb: beta-fake\n", "a", "b")
	first := f.broker(Options{})
	if err := first.Cycle(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	first.dir.Close()
	// A restarted broker: a is current, b changed while it was down.
	f.upstream("a: alpha-fake\nb: beta2-fake\n")
	inoA, inoB := f.inode("a"), f.inode("b")
	os.WriteFile(filepath.Join(f.dir, ".b.tmp-0123456789abcdef"), []byte("x"), 0o600)
	b := f.delivered(context.Background(), Options{})
	if f.inode("a") != inoA {
		t.Fatal("an adopted file with the current value was rewritten")
	}
	if f.inode("b") == inoB || f.read("b") != "beta2-fake" {
		t.Fatal("an adopted file with an old value was not replaced")
	}
	if d := written(b); d != float64(len("beta2-fake")) {
		t.Fatalf("restart wrote %v bytes, want only b's", d)
	}
	if _, err := os.Stat(filepath.Join(f.dir, ".b.tmp-0123456789abcdef")); !os.IsNotExist(err) {
		t.Fatal("a stale temporary file was left")
	}
	// Adopted files count as ours for wipe_on_exit.
	f.s.WipeOnExit = true
	if err := b.shutdown(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(f.dir)
	if len(ents) != 0 {
		t.Fatalf("wipe_on_exit left %v", ents)
	}
}

func TestRunStopsAndLeavesFiles(t *testing.T) {
	f := newFixture(t, "a: alpha-fake\n", "a")
	sentinel := filepath.Join(t.TempDir(), "done")
	f.s.Refresh = 50 * time.Millisecond
	b := f.broker(Options{ExitWhen: sentinel})
	b.now = time.Now
	errc := make(chan error, 1)
	go func() { errc <- b.Run(context.Background()) }()
	waitFor(t, func() bool { ok, _ := b.Ready(); return ok })
	os.WriteFile(sentinel, nil, 0o600)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("--exit-when did not stop the broker")
	}
	if f.read("a") != "alpha-fake" {
		t.Fatal("files were removed without wipe_on_exit")
	}
}

func TestBadSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*spec.Spec)
		want string
	}{
		{"refresh", func(s *spec.Spec) { s.Refresh = 0 }, "refresh: must be positive"},
		{"staleness", func(s *spec.Spec) { s.MaxStaleness = -1 }, "max_staleness: must be positive"},
		{"signal", func(s *spec.Spec) { s.Notify = spec.Notify{Signal: "SIGNOPE", PIDFile: "/x"} }, "unknown signal"},
		{"pidfile", func(s *spec.Spec) { s.Notify = spec.Notify{Signal: "SIGHUP"} }, "needs pid_file"},
		{"both", func(s *spec.Spec) { s.Notify = spec.Notify{Signal: "HUP", PIDFile: "/x", Command: []string{"x"}} }, "not both"},
		{"empty", func(s *spec.Spec) { s.Notify = spec.Notify{Command: []string{}} }, "command is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "a: alpha-fake\n", "a")
			tc.edit(f.s)
			_, err := New(f.s, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
			if err == nil || cli.CodeOf(err) != cli.ExitUsage || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want 64 with %q", err, tc.want)
			}
		})
	}
}

func TestNotifySignal(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	os.WriteFile(pidFile, []byte(itoa(os.Getpid())+"\n"), 0o600)
	ch := make(chan os.Signal, 1)
	signalNotify(ch, syscall.SIGUSR2)
	n, err := NewNotifier(spec.Notify{Signal: "USR2", PIDFile: pidFile}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(context.Background(), []string{"a"})
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
		t.Fatal("no signal")
	}
}

func TestTemplateRewrittenOnlyWhenItsOutputChanges(t *testing.T) {
	f := newFixture(t, "a: alpha-fake\nb: beta-fake\n", "a", "b")
	f.s.Templates = []spec.Template{{Dest: "app.conf", Mode: 0o400, Text: `pw={{ secret "a" }}` + "\n", Where: "templates[0]"}}
	ctx := context.Background()
	b := f.delivered(ctx, Options{})
	if got := f.read("app.conf"); got != "pw=alpha-fake\n" {
		t.Fatalf("app.conf = %q", got)
	}
	ino := f.inode("app.conf")
	f.upstream("a: alpha-fake\nb: beta2-fake\n") // b changes; the template does not use it
	f.advance(2 * time.Minute)
	if err := b.Cycle(ctx, false); err != nil {
		t.Fatal(err)
	}
	if f.inode("app.conf") != ino || f.read("b") != "beta2-fake" {
		t.Fatal("the template was rewritten though its output did not change, or b was not")
	}
	f.upstream("a: alpha2-fake\nb: beta2-fake\n")
	f.advance(2 * time.Minute)
	if err := b.Cycle(ctx, false); err != nil {
		t.Fatal(err)
	}
	if f.read("app.conf") != "pw=alpha2-fake\n" || f.inode("app.conf") == ino {
		t.Fatal("the template was not replaced after its secret changed")
	}
}
