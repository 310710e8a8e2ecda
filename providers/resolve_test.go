package providers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretbroker/secretbroker/secret"
)

func mustRefs(t testing.TB, raws ...string) []Ref {
	t.Helper()
	var out []Ref
	for _, s := range raws {
		r, err := ParseRef(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// recorder is a provider that answers from a map and records its calls.
type recorder struct {
	mu    sync.Mutex
	calls [][]string
	data  map[string]string
	delay time.Duration
}

func (p *recorder) Fetch(ctx context.Context, refs []Ref) []Result {
	var names []string
	for _, r := range refs {
		names = append(names, r.Canonical())
	}
	p.mu.Lock()
	p.calls = append(p.calls, names)
	p.mu.Unlock()
	return Parallel(ctx, 0, refs, func(ctx context.Context, r Ref) (Secret, error) {
		if p.delay > 0 {
			select {
			case <-time.After(p.delay):
			case <-ctx.Done():
				return Secret{}, ctx.Err()
			}
		}
		v, ok := p.data[r.Path]
		if !ok {
			return Secret{}, Errorf(r, KindNotFound, "no such secret")
		}
		return Secret{Value: secret.FromString(v)}, nil
	})
}

func TestResolveDedupesAndGroups(t *testing.T) {
	vault := &recorder{data: map[string]string{"secret/a": "1", "secret/b": "2"}}
	aws := &recorder{data: map[string]string{"prod/x": "3"}}
	var mu sync.Mutex // Resolve opens each scheme from its own goroutine
	opened := map[string]int{}
	open := func(_ context.Context, scheme string) (Provider, error) {
		mu.Lock()
		defer mu.Unlock()
		opened[scheme]++
		switch scheme {
		case "vault":
			return vault, nil
		case "aws-sm":
			return aws, nil
		}
		return nil, fmt.Errorf("no %s", scheme)
	}
	refs := mustRefs(t, "vault://secret/a", "vault://secret/a/", "vault://secret/b", "aws-sm://prod/x", "vault://secret/missing")
	res := Resolve(context.Background(), refs, open, Options{})
	if len(vault.calls) != 1 || len(vault.calls[0]) != 3 || len(aws.calls) != 1 {
		t.Fatalf("calls: vault %v, aws %v; want one call each, vault with 3 distinct refs", vault.calls, aws.calls)
	}
	if opened["vault"] != 1 || opened["aws-sm"] != 1 || opened["op"] != 0 {
		t.Fatalf("opened %v", opened)
	}
	if s, _ := res.Get(refs[1]); string(s.Value.Reveal()) != "1" {
		t.Fatal("deduped ref has no value")
	}
	if KindOf(res.Err(refs[4])) != KindNotFound {
		t.Fatalf("missing: %v", res.Err(refs[4]))
	}
}

func TestResolveEveryFailure(t *testing.T) {
	open := func(_ context.Context, scheme string) (Provider, error) {
		if scheme == "op" {
			return nil, &Error{Kind: KindConfig, Detail: "no token"}
		}
		return &recorder{data: map[string]string{}}, nil
	}
	refs := mustRefs(t, "op://v/i/f", "op://v/i/g", "vault://a", "vault://b")
	res := Resolve(context.Background(), refs, open, Options{})
	if len(res.Errors) != 4 || len(res.Secrets) != 0 {
		t.Fatalf("want 4 errors, got %v", res.Errors)
	}
	if !strings.Contains(res.Err(refs[0]).Error(), "op://v/i/f") || KindOf(res.Err(refs[0])) != KindConfig {
		t.Fatalf("opener error: %v", res.Err(refs[0]))
	}
}

// hanging ignores its context entirely, like a wedged client.
type hanging struct{ release chan struct{} }

func (h hanging) Fetch(ctx context.Context, refs []Ref) []Result {
	<-h.release
	return make([]Result, len(refs))
}

func TestResolveTimeoutDoesNotWaitForAHungProvider(t *testing.T) {
	h := hanging{release: make(chan struct{})}
	defer close(h.release)
	fine := &recorder{data: map[string]string{"ok.yaml": "v"}}
	open := func(_ context.Context, scheme string) (Provider, error) {
		if scheme == "vault" {
			return h, nil
		}
		return fine, nil
	}
	refs := mustRefs(t, "vault://stuck", "file://ok.yaml")
	res := Resolve(context.Background(), refs, open, Options{Timeout: 50 * time.Millisecond})
	if KindOf(res.Err(refs[0])) != KindTimeout || !strings.Contains(res.Err(refs[0]).Error(), "--timeout") {
		t.Fatalf("hung provider: %v", res.Err(refs[0]))
	}
	if _, ok := res.Get(refs[1]); !ok {
		t.Fatalf("the healthy provider's secret was lost: %v", res.Err(refs[1]))
	}
}

func TestParallelBound(t *testing.T) {
	var inFlight, peak atomic.Int32
	refs := make([]Ref, 50)
	for i := range refs {
		refs[i] = mustRefs(t, fmt.Sprintf("vault://s/%d", i))[0]
	}
	Parallel(context.Background(), 4, refs, func(ctx context.Context, r Ref) (Secret, error) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		inFlight.Add(-1)
		return Secret{}, nil
	})
	if peak.Load() > 4 || peak.Load() < 2 {
		t.Fatalf("peak in flight %d, want 2..4", peak.Load())
	}
}

func TestExtract(t *testing.T) {
	data := map[string]any{"b": map[string]any{"x": 1, "y": "two"}, "a": []any{"p", true}, "a/b": "slash", "m~n": "tilde"}
	tests := []struct{ ref, want string }{
		{"vault://p", `{"a":["p",true],"a/b":"slash","b":{"x":1,"y":"two"},"m~n":"tilde"}`},
		{"vault://p#b", `{"x":1,"y":"two"}`},
		{"vault://p#/b/y", "two"},
		{"vault://p#/a/1", "true"},
		{"vault://p#/a~1b", "slash"},
		{"vault://p#/m~0n", "tilde"},
	}
	for _, tt := range tests {
		v, err := Extract(mustRefs(t, tt.ref)[0], data)
		if err != nil || string(v.Reveal()) != tt.want {
			t.Errorf("%s = %q, %v; want %q", tt.ref, v.Reveal(), err, tt.want)
		}
	}
	_, err := Extract(mustRefs(t, "vault://p#/b/z")[0], data)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindNotFound || !strings.Contains(err.Error(), `keys there: "x", "y"`) || strings.Contains(err.Error(), "two") {
		t.Fatalf("missing key: %v", err)
	}
}
