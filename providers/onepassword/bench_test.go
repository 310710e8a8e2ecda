package onepassword

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/secretbroker/secretbroker/internal/testenv/opconnect"
	"github.com/secretbroker/secretbroker/providers"
)

// BenchmarkBinary builds a minimal program three ways and reports each
// one's size and the time to start it and exit (no op:// reference, so the
// SDK's core is never compiled):
//
//	go test -run XXX -bench Binary -benchtime 50x ./providers/onepassword/
func BenchmarkBinary(b *testing.B) {
	benchBuilds(b, "./internal/sizemain", []string{}, []build{
		{"without-provider", "sizebase"},
		{"with-sdk", ""},
		{"noonepassword_sdk", "noonepassword_sdk"},
	})
}

// BenchmarkInjectBinary does the same for the inject command, started as
// "inject version":
//
//	go test -run XXX -bench InjectBinary -benchtime 50x ./providers/onepassword/
func BenchmarkInjectBinary(b *testing.B) {
	benchBuilds(b, "../../cmd/inject", []string{"version"}, []build{
		{"with-sdk", ""},
		{"noonepassword_sdk", "noonepassword_sdk"},
	})
}

type build struct{ name, tags string }

func benchBuilds(b *testing.B, pkg string, args []string, builds []build) {
	dir := b.TempDir()
	for _, bl := range builds {
		bin := filepath.Join(dir, bl.name)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-tags", bl.tags, "-o", bin, pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", bl.name, err, out)
		}
		fi, err := os.Stat(bin)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bl.name, func(b *testing.B) {
			b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
			for i := 0; i < b.N; i++ {
				if err := exec.Command(bin, args...).Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSDKStart is the one-off cost of the first op:// fetch through a
// service account: compiling the SDK's WebAssembly core and making a client
// (with a fake token, so the call fails at login, after the compile):
//
//	go test -run XXX -bench SDKStart -benchtime 1x ./providers/onepassword/
func BenchmarkSDKStart(b *testing.B) {
	if newSDKClient == nil {
		b.Skip("built with noonepassword_sdk")
	}
	for i := 0; i < b.N; i++ {
		_, _ = newSDKClient(context.Background(), "ops_fake")
	}
}

// BenchmarkConnectFetch resolves 20 references into 4 items of 2 vaults
// against the Connect test server: "cold" with a new provider each time
// (name lookups included, as in one inject run), "warm" with one provider
// (ids cached, as in a broker refresh). requests/op is what Connect sees.
//
//	go test -run XXX -bench ConnectFetch ./providers/onepassword/
func BenchmarkConnectFetch(b *testing.B) {
	srv := opconnect.New("fake-bench-token")
	defer srv.Close()
	var refs []string
	for _, vn := range []string{"Prod", "Staging"} {
		v := srv.AddVault(vn)
		for _, in := range []string{"Database", "Stripe"} {
			it := &opconnect.Item{Title: in}
			for i := 0; i < 5; i++ {
				label := fmt.Sprintf("field%d", i)
				it.Fields = append(it.Fields, opconnect.Field{Label: label, Value: "fake-bench-value"})
				refs = append(refs, fmt.Sprintf("op://%s/%s/%s", vn, in, label))
			}
			v.AddItem(it)
		}
	}
	var parsed []providers.Ref
	for _, s := range refs {
		r, err := providers.ParseRef(s)
		if err != nil {
			b.Fatal(err)
		}
		parsed = append(parsed, r)
	}
	env := providers.Env{Getenv: func(k string) string {
		return map[string]string{EnvConnectHost: srv.URL, EnvConnectToken: "fake-bench-token"}[k]
	}}
	fetch := func(b *testing.B, p providers.Provider) {
		for _, r := range p.Fetch(context.Background(), parsed) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	b.Run("cold", func(b *testing.B) {
		before := len(srv.Requests())
		for i := 0; i < b.N; i++ {
			p, _ := New(context.Background(), env)
			fetch(b, p)
		}
		b.ReportMetric(float64(len(srv.Requests())-before)/float64(b.N), "requests/op")
	})
	b.Run("warm", func(b *testing.B) {
		p, _ := New(context.Background(), env)
		fetch(b, p)
		before := len(srv.Requests())
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			fetch(b, p)
		}
		b.ReportMetric(float64(len(srv.Requests())-before)/float64(b.N), "requests/op")
	})
}
