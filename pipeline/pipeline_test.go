package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/policy"
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/providers/awssm"
	"github.com/secretbroker/secretbroker/providers/file"
	"github.com/secretbroker/secretbroker/providers/vault"
	"github.com/secretbroker/secretbroker/secret"
	"github.com/secretbroker/secretbroker/spec"
	"github.com/secretbroker/secretbroker/tmpfs"
)

// fake is an in-memory provider with a lifecycle, registered for the
// schemes these tests use.
type fake struct {
	mu       sync.Mutex
	data     map[string]string
	builds   atomic.Int32
	handoffs atomic.Int32
	closes   atomic.Int32
	handoff  func(ctx context.Context) error
}

func (f *fake) Fetch(ctx context.Context, refs []providers.Ref) []providers.Result {
	out := make([]providers.Result, len(refs))
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range refs {
		v, ok := f.data[r.Path]
		if !ok {
			out[i].Err = providers.Errorf(r, providers.KindNotFound, "no such secret")
			continue
		}
		out[i].Secret = providers.Secret{Value: secret.FromString(v)}
	}
	return out
}

func (f *fake) Handoff(ctx context.Context, supervised bool) error {
	f.handoffs.Add(1)
	if f.handoff != nil {
		return f.handoff(ctx)
	}
	return nil
}
func (f *fake) Keep(ctx context.Context)        {}
func (f *fake) Close(ctx context.Context) error { f.closes.Add(1); return nil }

var fakes sync.Map // scheme -> *fake

func fakeFor(scheme string) *fake {
	v, _ := fakes.Load(scheme)
	return v.(*fake)
}

// TestMain registers the real descriptors of three schemes (their grammar,
// identity and consumed credentials) with a fake behind each; op is left
// out, as a build tag would.
func TestMain(m *testing.M) {
	for _, reg := range []providers.Registration{vault.Descriptor(), awssm.Descriptor(), file.Descriptor()} {
		sc := reg.Scheme
		reg.New = func(context.Context, providers.Env) (providers.Provider, error) {
			f := fakeFor(sc)
			f.builds.Add(1)
			return f, nil
		}
		providers.Register(reg)
	}
	os.Exit(m.Run())
}

// setup installs fresh fakes and returns a spec reading refs into a
// directory under /dev/shm (a tmpfs).
func setup(t *testing.T, data map[string]map[string]string, refs ...string) *spec.Spec {
	t.Helper()
	for _, sc := range []string{"vault", "aws-sm", "file"} {
		fakes.Store(sc, &fake{data: data[sc]})
	}
	shm, err := os.MkdirTemp("/dev/shm", "pipeline-test")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	s := &spec.Spec{Dir: filepath.Join(shm, "s"), DirIsSet: true, Timeout: time.Minute}
	for _, raw := range refs {
		name, rest, _ := strings.Cut(raw, "=")
		optional := strings.HasPrefix(name, "?")
		name = strings.TrimPrefix(name, "?")
		ref, err := providers.ParseRef(rest)
		if err != nil {
			t.Fatal(err)
		}
		s.Secrets = append(s.Secrets, spec.Secret{Name: name, Ref: ref, Mode: 0o400, EnvVar: strings.ToUpper(name) + "_FILE", Optional: optional, Where: "secrets." + name})
	}
	return s
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newRun(t *testing.T, s *spec.Spec) *Run {
	t.Helper()
	r, err := New(s, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CheckPolicy(); err != nil {
		t.Fatal(err)
	}
	return r
}

var threeSchemes = map[string]map[string]string{
	"vault":  {"secret/db": "fake-db"},
	"aws-sm": {"prod/api": "fake-api"},
	"file":   {"s.yaml": "fake-file"},
}

// TestOneProviderPerSchemeUnderConcurrentResolves resolves three schemes
// (one goroutine each inside Resolve) from several callers at once, as the
// broker and a check can: every scheme's provider is built exactly once.
// Under -race this is the test for the cache that had no lock.
func TestOneProviderPerSchemeUnderConcurrentResolves(t *testing.T) {
	s := setup(t, threeSchemes, "db=vault://secret/db#v", "api=aws-sm://prod/api", "f=file://s.yaml")
	fakes.Range(func(_, v any) bool {
		v.(*fake).data = map[string]string{"secret/db": "x", "prod/api": "x", "s.yaml": "x"}
		return true
	})
	r := newRun(t, s)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			res := r.Resolve(context.Background())
			for _, sec := range s.Secrets {
				if err := res.Err(sec.Ref); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for _, sc := range []string{"vault", "aws-sm", "file"} {
		if n := fakeFor(sc).builds.Load(); n != 1 {
			t.Errorf("%s provider built %d times, want 1", sc, n)
		}
	}
	if got := len(r.Lifecycles()); got != 3 {
		t.Errorf("Lifecycles: %d, want 3", got)
	}
}

func TestInjectWritesEverySecretAndPointsTheAppAtIt(t *testing.T) {
	s := setup(t, threeSchemes, "db=vault://secret/db", "api=aws-sm://prod/api", "?gone=vault://secret/gone")
	s.Environ = []string{"PATH=/bin", "VAULT_TOKEN=fake-token", "KEEP=1"}
	s.Templates = []spec.Template{{Source: "app.tmpl", Dest: "app.conf", Mode: 0o400, Text: `db={{ secret "db" }}`, Where: "templates[0]"}}
	r := newRun(t, s)
	d, err := r.OpenDir()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := r.Deliver(context.Background(), Delivery{Mode: Inject, Dir: d}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"db": "fake-db", "api": "fake-api", "app.conf": "db=fake-db"} {
		got, err := os.ReadFile(d.File(name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := os.Stat(d.File("gone")); !os.IsNotExist(err) {
		t.Errorf("optional secret not found was written: %v", err)
	}
	env, err := r.AppEnv(d)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(env, "DB_FILE="+d.File("db")) || !slices.Contains(env, "KEEP=1") {
		t.Errorf("env %q lacks DB_FILE or KEEP", env)
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "VAULT_TOKEN=") || strings.HasPrefix(kv, "GONE_FILE=") {
			t.Errorf("env holds %s", kv)
		}
	}
	if err := r.Handoff(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	r.Release()
	if fakeFor("vault").handoffs.Load() != 1 || fakeFor("vault").closes.Load() != 1 {
		t.Errorf("vault lifecycle: %d handoffs, %d closes; want 1, 1", fakeFor("vault").handoffs.Load(), fakeFor("vault").closes.Load())
	}
	if fakeFor("file").builds.Load() != 0 {
		t.Error("a provider the spec does not use was built")
	}
}

func TestFetchReportsEveryFailureWith69(t *testing.T) {
	s := setup(t, threeSchemes, "a=vault://secret/nope", "b=aws-sm://prod/nope", "db=vault://secret/db")
	r := newRun(t, s)
	_, err := r.Deliver(context.Background(), Delivery{Mode: Inject})
	if cli.CodeOf(err) != cli.ExitProvider {
		t.Fatalf("code %d (%v), want %d", cli.CodeOf(err), err, cli.ExitProvider)
	}
	for _, want := range []string{"a (secrets.a)", "b (secrets.b)", "2 secret(s)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestWriteRemovesWhatItWroteWhenATemplateFails(t *testing.T) {
	s := setup(t, threeSchemes, "db=vault://secret/db")
	s.Templates = []spec.Template{{Source: "bad.tmpl", Dest: "bad.conf", Mode: 0o400, Text: `{{ secret "undeclared" }}`, Where: "templates[0]"}}
	r := newRun(t, s)
	d, err := fetchAndWrite(t, r)
	if cli.CodeOf(err) != cli.ExitUsage {
		t.Fatalf("code %d (%v), want %d", cli.CodeOf(err), err, cli.ExitUsage)
	}
	if _, err := os.Stat(d.File("db")); !os.IsNotExist(err) {
		t.Errorf("db stayed after a failed write: %v", err)
	}
}

func TestWriteRefusesASecretOverThePolicySizeCap(t *testing.T) {
	s := setup(t, map[string]map[string]string{"vault": {"secret/db": strings.Repeat("x", 100)}}, "db=vault://secret/db")
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pol, []byte("allow: [\"vault://secret/*\"]\nmax_secret_bytes: 10\n"), 0o600)
	s.PolicyFile = pol
	r := newRun(t, s)
	d, err := r.OpenDir()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = r.Deliver(context.Background(), Delivery{Mode: Inject, Dir: d})
	var denied policy.Denied
	if cli.CodeOf(err) != cli.ExitPolicy || !errors.As(err, &denied) {
		t.Fatalf("code %d (%v), want %d", cli.CodeOf(err), err, cli.ExitPolicy)
	}
	if _, err := os.Stat(d.File("db")); !os.IsNotExist(err) {
		t.Errorf("db written despite the size cap: %v", err)
	}
}

func TestNewRejectsASchemeThisBuildLacks(t *testing.T) {
	// A build without a provider cannot parse its references at all
	// (spec refuses them); a Ref made some other way is still refused.
	if _, err := providers.ParseRef("op://v/i/f"); err == nil {
		t.Fatal("op://v/i/f parses in a build without op")
	}
	s := setup(t, nil)
	s.Secrets = append(s.Secrets, spec.Secret{Name: "x", Ref: providers.Ref{Raw: "op://v/i/f", Scheme: "op", Path: "v/i/f"}, Where: "secrets.x"})
	_, err := New(s, quiet())
	if cli.CodeOf(err) != cli.ExitUsage || !strings.Contains(err.Error(), "no op provider") {
		t.Fatalf("err %v (code %d)", err, cli.CodeOf(err))
	}
}

// fetchAndWrite opens r's directory (closed at the test's end) and
// returns inject's Deliver's error.
func fetchAndWrite(t *testing.T, r *Run) (*tmpfs.Dir, error) {
	t.Helper()
	d := openDir(t, r)
	_, err := r.Deliver(context.Background(), Delivery{Mode: Inject, Dir: d})
	return d, err
}

func openDir(t *testing.T, r *Run) *tmpfs.Dir {
	t.Helper()
	d, err := r.OpenDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestCheckReportsEachSecretAndWritesNothing(t *testing.T) {
	s := setup(t, threeSchemes, "db=vault://secret/db", "a=aws-sm://prod/nope", "?gone=vault://secret/gone")
	r := newRun(t, s)
	rep, err := r.Deliver(context.Background(), Delivery{Mode: Check})
	if cli.CodeOf(err) != cli.ExitProvider || !strings.Contains(err.Error(), "1 of 3 secret(s) failed") {
		t.Fatalf("err %v (code %d)", err, cli.CodeOf(err))
	}
	if len(rep.Outcomes) != 3 || rep.Outcomes[0].Err != nil || string(rep.Outcomes[0].Got.Value.Reveal()) != "fake-db" ||
		rep.Outcomes[1].Err == nil || !rep.Outcomes[2].Skipped || len(rep.Files) != 0 {
		t.Errorf("outcomes %+v, files %v", rep.Outcomes, rep.Files)
	}
	if entries, _ := os.ReadDir(s.Dir); len(entries) != 0 {
		t.Errorf("check wrote %d file(s)", len(entries))
	}
}

// TestBrokerWritesOnlyChangedFilesAndKeepsTheLastGoodOne runs the broker
// mode over the same directory: an unchanged value is not rewritten, a
// changed one replaces its file, and a fetch that fails or a value the size
// cap refuses leaves the last good file; values are wiped on return.
func TestBrokerWritesOnlyChangedFilesAndKeepsTheLastGoodOne(t *testing.T) {
	s := setup(t, map[string]map[string]string{"vault": {"secret/db": "fake-1", "secret/api": "fake-a"}}, "db=vault://secret/db", "api=vault://secret/api")
	s.Templates = []spec.Template{{Source: "app.tmpl", Dest: "app.conf", Mode: 0o400, Text: `db={{ secret "db" }}`, Where: "templates[0]"}}
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pol, []byte("allow: [\"vault://secret/*\"]\nmax_secret_bytes: 10\n"), 0o600)
	s.PolicyFile = pol
	r := newRun(t, s)
	d := openDir(t, r)
	files, _ := r.AdoptFiles(d)
	deliver := func(due ...spec.Secret) (Report, error) {
		t.Helper()
		if due == nil {
			due = s.Secrets
		}
		return r.Deliver(context.Background(), Delivery{Mode: Broker, Dir: d, Due: due, Files: files})
	}
	read := func(name string) string { b, _ := os.ReadFile(d.File(name)); return string(b) }
	vault := fakeFor("vault")
	set := func(path, v string) { vault.mu.Lock(); vault.data[path] = v; vault.mu.Unlock() }

	rep, err := deliver()
	if err != nil || len(rep.Files) != 3 || read("app.conf") != "db=fake-1" {
		t.Fatalf("first delivery: %v, files %v", err, rep.Files)
	}
	if v := rep.Outcomes[0].Got.Value.Reveal(); len(v) != 0 && v[0] != 0 {
		t.Error("a value outlived the delivery")
	}
	if rep, err = deliver(); err != nil || len(rep.Files) != 0 {
		t.Errorf("unchanged delivery wrote %v (%v)", rep.Files, err)
	}
	set("secret/db", "fake-2")
	rep, err = deliver()
	if err != nil || len(rep.Files) != 2 || !rep.Files[0].Replaced || read("db") != "fake-2" || read("app.conf") != "db=fake-2" {
		t.Errorf("changed delivery: %v, files %+v", err, rep.Files)
	}
	// Only the due subset is read, and templates wait for every secret.
	set("secret/db", "fake-3")
	if rep, err = deliver(s.Secrets[1]); err != nil || len(rep.Outcomes) != 1 || len(rep.Files) != 0 || read("app.conf") != "db=fake-2" {
		t.Errorf("subset delivery: %v, %d outcomes, files %+v", err, len(rep.Outcomes), rep.Files)
	}
	set("secret/db", "fake-db-over-the-cap")
	rep, err = deliver()
	if cli.CodeOf(err) != cli.ExitPolicy || !rep.Outcomes[0].Undelivered || read("db") != "fake-2" || read("app.conf") != "db=fake-2" {
		t.Errorf("over the cap: %v (code %d), db %q", err, cli.CodeOf(err), read("db"))
	}
	vault.mu.Lock()
	delete(vault.data, "secret/db")
	vault.mu.Unlock()
	rep, err = deliver()
	if cli.CodeOf(err) != cli.ExitProvider || rep.Outcomes[0].Undelivered || read("db") != "fake-2" {
		t.Errorf("failed fetch: %v (code %d), db %q", err, cli.CodeOf(err), read("db"))
	}
	files.Remove(d, "db")
	if _, err := os.Stat(d.File("db")); !os.IsNotExist(err) {
		t.Errorf("Remove left db: %v", err)
	}
	set("secret/db", "fake-2")
	if rep, err = deliver(); err != nil || len(rep.Files) != 1 || rep.Files[0].Replaced || read("db") != "fake-2" {
		t.Errorf("after Remove: %v, files %+v", err, rep.Files)
	}
}

// TestAdoptFilesSkipsWhatIsAlreadyThere: a second broker over the same
// directory rewrites nothing whose value is unchanged.
func TestAdoptFilesSkipsWhatIsAlreadyThere(t *testing.T) {
	s := setup(t, threeSchemes, "db=vault://secret/db", "api=aws-sm://prod/api")
	r := newRun(t, s)
	d := openDir(t, r)
	if _, err := r.Deliver(context.Background(), Delivery{Mode: Inject, Dir: d}); err != nil {
		t.Fatal(err)
	}
	files, n := r.AdoptFiles(d)
	if n != 2 {
		t.Fatalf("adopted %d, want 2", n)
	}
	rep, err := r.Deliver(context.Background(), Delivery{Mode: Broker, Dir: d, Due: s.Secrets, Files: files})
	if err != nil || len(rep.Files) != 0 {
		t.Errorf("rewrote %+v (%v)", rep.Files, err)
	}
}
