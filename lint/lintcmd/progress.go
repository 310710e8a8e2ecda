package lintcmd

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/secretbroker/secretbroker/lint/scan"
)

// progressDelay (a variable for tests) is how long a scan runs before a progress line appears:
// short scans (a pre-commit hook, a small image) print nothing extra.
var progressDelay = time.Second

// isTerminal reports whether w is a terminal. Progress goes only there:
// a CI log or a redirected stderr gets no carriage-return noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// startProgress redraws one line on w (a terminal) every tick after delay,
// until the returned stop is called, which clears the line.
func startProgress(w io.Writer, p *scan.Progress, delay time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		if delay > 0 {
			select {
			case <-done:
				return
			case <-time.After(delay):
			}
		}
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			fmt.Fprint(w, "\r"+progressLine(p, time.Since(start))+"\x1b[K")
			select {
			case <-done:
				fmt.Fprint(w, "\r\x1b[K")
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// progressLine is "lint: layer 2/6, 1234 files, 310 MiB of 499 MiB,
// 95 MiB/s, ETA 2s" (layers and ETA only when known).
func progressLine(p *scan.Progress, elapsed time.Duration) string {
	bytes := p.Bytes.Load()
	line := "lint:"
	if n := p.Layers.Load(); n > 0 {
		line += fmt.Sprintf(" layers %d/%d,", p.LayersDone.Load(), n)
	}
	line += fmt.Sprintf(" %d files, %s", p.Files.Load(), size(bytes))
	total := p.Total.Load()
	if p.Known() {
		line += " of " + size(total)
	}
	rate := float64(bytes) / max(elapsed.Seconds(), 0.001)
	line += fmt.Sprintf(", %s/s", size(int64(rate)))
	if p.Known() && rate > 0 && total >= bytes {
		eta := time.Duration(float64(total-bytes) / rate * float64(time.Second))
		line += ", ETA " + eta.Round(time.Second).String()
	}
	return line
}

func size(n int64) string {
	switch {
	case n >= 10<<30:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
