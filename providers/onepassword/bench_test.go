package onepassword

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
