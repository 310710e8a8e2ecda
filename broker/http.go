package broker

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves /healthz (liveness: the process answers), /readyz (200
// after the first complete delivery while no secret is older than
// max_staleness, 503 with the reason otherwise) and /metrics. No handler
// ever writes a secret value.
func (b *Broker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := b.Ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(b.reg, promhttp.HandlerOpts{}))
	return mux
}

// IsUnix reports whether a --listen address names a unix socket: a path
// (it holds a "/") or "unix:PATH".
func IsUnix(addr string) (path string, ok bool) {
	if p, found := strings.CutPrefix(addr, "unix:"); found {
		return p, true
	}
	if strings.Contains(addr, "/") {
		return addr, true
	}
	return "", false
}

// Listen opens a TCP address (host:port) or a unix socket path. A socket
// file left by an earlier broker is replaced; any other file is not.
func Listen(addr string) (net.Listener, error) {
	if p, ok := IsUnix(addr); ok {
		if fi, err := os.Lstat(p); err == nil {
			if fi.Mode()&os.ModeSocket == 0 {
				return nil, fmt.Errorf("--listen %s: exists and is not a socket", p)
			}
			os.Remove(p)
		}
		return net.Listen("unix", p)
	}
	return net.Listen("tcp", addr)
}
