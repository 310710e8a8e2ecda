package broker

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

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

// Bounds of the listener: a client gets MaxConns connections at once (the
// next waits in the kernel's backlog), headers up to MaxHeaderBytes (431
// beyond), and the timeouts below; a stuck or slow client holds nothing
// longer.
const (
	MaxConns          = 64
	MaxHeaderBytes    = 8 << 10
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 10 * time.Second
	IdleTimeout       = 60 * time.Second
)

// NewServer is the HTTP server for h, with the bounds above.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// Listen opens a TCP address (host:port) or a unix socket path, accepting
// at most MaxConns connections at once. A socket file left by an earlier
// broker is replaced; any other file is not. A socket is created with mode
// 0600: only the broker's user (and root) may connect.
func Listen(addr string) (net.Listener, error) {
	ln, err := listen(addr)
	if err != nil {
		return nil, err
	}
	return &limited{Listener: ln, sem: make(chan struct{}, MaxConns)}, nil
}

func listen(addr string) (net.Listener, error) {
	if p, ok := IsUnix(addr); ok {
		if fi, err := os.Lstat(p); err == nil {
			if fi.Mode()&os.ModeSocket == 0 {
				return nil, fmt.Errorf("--listen %s: exists and is not a socket", p)
			}
			os.Remove(p)
		}
		old := syscall.Umask(0o177) // no moment with a wider mode
		ln, err := net.Listen("unix", p)
		syscall.Umask(old)
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(p, 0o600); err != nil {
			ln.Close()
			return nil, err
		}
		return ln, nil
	}
	return net.Listen("tcp", addr)
}

// limited is a listener with at most cap(sem) connections open.
type limited struct {
	net.Listener
	sem chan struct{}
}

func (l *limited) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
