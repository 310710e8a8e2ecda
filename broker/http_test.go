package broker

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve starts a bounded server for h on addr and returns the listener.
func serve(t *testing.T, addr string, h http.Handler) net.Listener {
	t.Helper()
	ln, err := Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln
}

func ok(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }

func TestListenerBounds(t *testing.T) {
	t.Run("header over 8KiB is 431", func(t *testing.T) {
		ln := serve(t, "127.0.0.1:0", http.HandlerFunc(ok))
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 16<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})
	t.Run("timeouts are set", func(t *testing.T) {
		s := NewServer(http.HandlerFunc(ok))
		if s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.ReadHeaderTimeout <= 0 || s.MaxHeaderBytes != 8<<10 {
			t.Fatalf("server bounds missing: %+v", s)
		}
	})
	t.Run("at most MaxConns connections", func(t *testing.T) {
		ln := serve(t, "127.0.0.1:0", http.HandlerFunc(ok))
		var idle []net.Conn
		for range MaxConns {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			idle = append(idle, c) // open, silent: each holds a slot
		}
		c, err := net.Dial("tcp", ln.Addr().String()) // queued in the backlog
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
			t.Fatal("connection MaxConns+1 was served while MaxConns were open")
		}
		idle[0].Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.Contains(line, "200") {
			t.Fatalf("after a slot freed: %q, %v", line, err)
		}
		for _, c := range idle[1:] {
			c.Close()
		}
	})
	t.Run("unix socket is 0600", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "b.sock")
		serve(t, p, http.HandlerFunc(ok))
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Fatalf("socket mode %#o, want 0600", m)
		}
	})
}
