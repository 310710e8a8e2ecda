package webhook

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Server serves /mutate, /healthz and /metrics.
type Server struct {
	Options Options
	Log     *slog.Logger

	reg      *prometheus.Registry
	total    *prometheus.CounterVec
	duration prometheus.Histogram
	cache    *prometheus.CounterVec
}

// NewServer returns a server whose metrics are registered on a registry of
// its own.
func NewServer(o Options, log *slog.Logger) *Server {
	s := &Server{Options: o, Log: log, reg: prometheus.NewRegistry()}
	s.total = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "secretbroker_webhook_admissions_total", Help: "Admission reviews by result (mutated, unchanged, excluded, denied, error).",
	}, []string{"result"})
	s.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "secretbroker_webhook_admission_duration_seconds", Help: "Time to answer an admission review.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	s.cache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "secretbroker_webhook_image_config_lookups_total", Help: "Image config lookups by cache result (hit, miss).",
	}, []string{"cache"})
	s.reg.MustRegister(s.total, s.duration, s.cache, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	if r, ok := o.Images.(*Registry); ok {
		r.OnLookup(func(hit bool) {
			if hit {
				s.cache.WithLabelValues("hit").Inc()
			} else {
				s.cache.WithLabelValues("miss").Inc()
			}
		})
	}
	return s
}

// Handler routes the three paths.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mutate", s.mutate)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	return mux
}

func (s *Server) mutate(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&review); err != nil || review.Request == nil {
		s.total.WithLabelValues("error").Inc()
		http.Error(w, "secretbroker: the body is not an AdmissionReview v1 with a request", http.StatusBadRequest)
		return
	}
	req := review.Request
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	result := "unchanged"
	log := s.Log.With("uid", req.UID, "namespace", req.Namespace, "name", podName(req), "operation", req.Operation)
	if s.Options.IsExcluded(req.Namespace) {
		// Whatever the configuration's namespaceSelector let through.
		result = "excluded"
	} else if req.Kind.Kind == "Pod" && req.Kind.Group == "" && req.SubResource == "" {
		var pod corev1.Pod
		if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
			resp.Allowed, result = false, "error"
			resp.Result = &metav1.Status{Code: http.StatusBadRequest, Message: "secretbroker: the object is not a Pod: " + err.Error()}
		} else {
			ctx, cancel := context.WithTimeout(r.Context(), answerWithin(r))
			ops, err := Mutate(ctx, s.Options, req.Namespace, &pod)
			cancel()
			switch {
			case err != nil:
				resp.Allowed, result = false, "denied"
				resp.Result = &metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: err.Error()}
			case ops != nil:
				b, err := MarshalPatch(ops)
				if err != nil {
					resp.Allowed, result = false, "error"
					resp.Result = &metav1.Status{Code: http.StatusInternalServerError, Message: err.Error()}
					break
				}
				pt := admissionv1.PatchTypeJSONPatch
				resp.Patch, resp.PatchType, result = b, &pt, "mutated"
			}
		}
	}
	review.Response, review.Request = resp, nil
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(&review)
	s.total.WithLabelValues(result).Inc()
	d := time.Since(start)
	s.duration.Observe(d.Seconds())
	if resp.Result != nil {
		log.Info("admission", "result", result, "reason", resp.Result.Message, "duration_ms", d.Milliseconds())
	} else {
		log.Info("admission", "result", result, "duration_ms", d.Milliseconds())
	}
}

func podName(req *admissionv1.AdmissionRequest) string {
	if req.Name != "" {
		return req.Name
	}
	var m struct {
		Metadata struct {
			GenerateName string `json:"generateName"`
		} `json:"metadata"`
	}
	json.Unmarshal(req.Object.Raw, &m)
	return m.Metadata.GenerateName
}

// CertReloader serves the key pair in two files and reads them again when
// either file's modification time or size changes (cert-manager and
// kubelet secret volumes replace them in place).
type CertReloader struct {
	CertFile, KeyFile string

	mu    sync.Mutex
	stamp string
	cert  *tls.Certificate
}

// GetCertificate is for tls.Config.
func (c *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stamp, err := c.fileStamp()
	if err != nil {
		if c.cert != nil {
			return c.cert, nil // keep serving the last good pair
		}
		return nil, err
	}
	if stamp != c.stamp || c.cert == nil {
		kp, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			if c.cert != nil {
				return c.cert, nil // half-written: try again next time
			}
			return nil, err
		}
		c.cert, c.stamp = &kp, stamp
	}
	return c.cert, nil
}

func (c *CertReloader) fileStamp() (string, error) {
	var out string
	for _, f := range []string{c.CertFile, c.KeyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		out += fmt.Sprintf("%d.%d;", st.ModTime().UnixNano(), st.Size())
	}
	return out, nil
}

// Check loads the pair once, so a bad path fails at start.
func (c *CertReloader) Check() error {
	_, err := c.GetCertificate(nil)
	if err != nil {
		return fmt.Errorf("TLS key pair %s, %s: %w", c.CertFile, c.KeyFile, err)
	}
	return nil
}

// ListenAndServe serves h over TLS on addr until ctx ends.
func ListenAndServe(ctx context.Context, addr string, certs *CertReloader, h http.Handler) error {
	if err := certs.Check(); err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate},
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServeTLS("", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// maxAnswer bounds the work on one pod when the API server states no
// timeout (the admission API's largest timeoutSeconds is 30; ours is 5).
const maxAnswer = 8 * time.Second

// answerWithin is how long Mutate may take for request r. The API server
// appends the registration's timeoutSeconds to the URL as ?timeout=5s and
// gives up (failing closed) when it passes; working on past it only ties
// up the webhook with answers nobody reads. The answer needs a moment to
// travel back, so Mutate gets 90% of the stated time, never more than
// maxAnswer, and a malformed value is ignored.
func answerWithin(r *http.Request) time.Duration {
	d, err := time.ParseDuration(r.URL.Query().Get("timeout"))
	if err != nil || d <= 0 {
		return maxAnswer
	}
	return min(d*9/10, maxAnswer)
}
