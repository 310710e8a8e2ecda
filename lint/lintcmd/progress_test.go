//go:build linux

package lintcmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secretbroker/secretbroker/lint/scan"
)

// openPTY returns the two ends of a pseudo-terminal (no library needed on
// Linux: /dev/ptmx, unlock, open the numbered slave).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	// Non-blocking, so that read deadlines work on the master.
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	m := os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open slave: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// readUntil reads the master end until want shows up (or 10 s pass).
func readUntil(t *testing.T, m *os.File, want string) string {
	t.Helper()
	var got bytes.Buffer
	buf := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_ = m.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _ := m.Read(buf)
		got.Write(buf[:n])
		if strings.Contains(got.String(), want) {
			return got.String()
		}
	}
	t.Fatalf("terminal never showed %q; got %q", want, got.String())
	return ""
}

// On a terminal the progress line shows layers, files, bytes, rate and
// ETA, and stop clears it.
func TestProgressOnTerminal(t *testing.T) {
	m, s := openPTY(t)
	if !isTerminal(s) {
		t.Fatal("a pty is not taken for a terminal")
	}
	p := new(scan.Progress)
	p.Layers.Store(6)
	p.LayersDone.Store(2)
	p.Files.Store(1234)
	p.Total.Store(400 << 20)
	p.Bytes.Store(100 << 20)
	stop := startProgress(s, p, 0)
	out := readUntil(t, m, "ETA")
	for _, w := range []string{"layers 2/6", "1234 files", "100 MiB of 400 MiB", "/s"} {
		if !strings.Contains(out, w) {
			t.Errorf("progress %q lacks %q", out, w)
		}
	}
	stop()
	readUntil(t, m, "\r\x1b[K")
}

// Nothing is drawn when stderr is no terminal (a pipe, a file, a buffer),
// nor before the delay.
func TestProgressNotTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "err"))
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, x := range []any{f, w, new(bytes.Buffer)} {
		if isTerminal(x.(interface{ Write([]byte) (int, error) })) {
			t.Errorf("%T taken for a terminal", x)
		}
	}
	m, s := openPTY(t)
	stop := startProgress(s, new(scan.Progress), time.Hour)
	stop()
	_ = m.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _ := m.Read(make([]byte, 64)); n > 0 {
		t.Fatalf("a short scan drew %d bytes", n)
	}
}

// The command draws on a terminal stderr, and --quiet keeps it silent.
func TestProgressCommand(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := progressDelay
	defer func() { progressDelay = old }()
	for _, quiet := range []bool{false, true} {
		m, s := openPTY(t)
		progressDelay = 0
		cmd := Command()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(s)
		args := []string{"fs:" + dir}
		if quiet {
			args = append([]string{"--quiet"}, args...)
		}
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		var got bytes.Buffer
		_ = m.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				break
			}
		}
		drew := strings.Contains(got.String(), "files")
		if drew == quiet {
			t.Errorf("quiet=%v: terminal got %q", quiet, got.String())
		}
	}
}
