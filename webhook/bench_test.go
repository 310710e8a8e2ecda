package webhook

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
)

// BenchmarkAdmission answers AdmissionReviews for a pod with 10 secret
// annotations through the HTTP handler: "command" gives a command (no
// image lookup: the baseline), "warm" has no command and its image config
// cached, "cold" has no command and a fresh cache each time (a HEAD and two
// GETs to go-containerregistry's in-process registry). Each reports p50 and
// p99 besides the mean; bench/webhook.sh prints them with ratios.
func BenchmarkAdmission(b *testing.B) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	img, _ := random.Image(256, 1)
	cf, _ := img.ConfigFile()
	cf.Config.Entrypoint, cf.Config.Cmd = []string{"/app"}, []string{"--serve"}
	img, _ = mutate.ConfigFile(img, cf)
	image := strings.TrimPrefix(reg.URL, "http://") + "/bench/app:1"
	tag, _ := name.ParseReference(image)
	if err := remote.Write(tag, img); err != nil {
		b.Fatal(err)
	}
	ann := map[string]string{AnnInject: "true"}
	for i := range 10 {
		ann[fmt.Sprintf("%ssecret_%d", AnnSecretPrefix, i)] = fmt.Sprintf("vault://secret/app/s%d#value", i)
	}
	withCmd := review(nil, "apps", pod(ann, corev1.Container{Name: "app", Image: image, Command: []string{"/app"}}))
	noCmd := review(nil, "apps", pod(ann, corev1.Container{Name: "app", Image: image}))
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	for _, tc := range []struct {
		name  string
		body  []byte
		fresh bool // a new image-config cache before each review
	}{{"command", withCmd, false}, {"warm", noCmd, false}, {"cold", noCmd, true}} {
		b.Run(tc.name, func(b *testing.B) {
			images := &Registry{}
			h := NewServer(Options{Image: "sb:1", Images: images}, quiet).Handler()
			serve(b, h, tc.body) // warms the cache for "warm"
			d := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				if tc.fresh {
					b.StopTimer()
					*images = Registry{}
					b.StartTimer()
				}
				t0 := time.Now()
				serve(b, h, tc.body)
				d = append(d, time.Since(t0))
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
		})
	}
}

func serve(b *testing.B, h http.Handler, body []byte) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/mutate", bytes.NewReader(body)))
	if w.Code != 200 || !bytes.Contains(w.Body.Bytes(), []byte(`"patch"`)) {
		b.Fatalf("%d %s", w.Code, w.Body)
	}
}
