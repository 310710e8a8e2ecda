// Command startup times commands the way bench/startup.sh needs: it runs a
// baseline and a candidate alternately, N times each, and prints their
// median wall times, the overhead, and the candidate's peak RSS. Running
// both in one process, interleaved, keeps machine noise out of the ratio.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 200, "runs of each command")
	base := flag.String("baseline", "/bin/true", "baseline command (space-separated)")
	flag.Parse()
	cand := flag.Args()
	if len(cand) == 0 {
		fmt.Fprintln(os.Stderr, "usage: startup [-n N] [-baseline CMD] CANDIDATE...")
		os.Exit(2)
	}
	baseArgs := strings.Fields(*base)
	var tb, tc, cb, cc []time.Duration
	var peak int64
	for i := 0; i < *n; i++ {
		d, cpu, _ := run(baseArgs)
		tb, cb = append(tb, d), append(cb, cpu)
		d, cpu, rss := run(cand)
		tc, cc = append(tc, d), append(cc, cpu)
		if rss > peak {
			peak = rss
		}
	}
	mb, mc := median(tb), median(tc)
	fmt.Printf("baseline  %-40s median %8.2f ms\n", *base, ms(mb))
	fmt.Printf("candidate %-40s median %8.2f ms\n", strings.Join(cand[:min(len(cand), 3)], " ")+" ...", ms(mc))
	fmt.Printf("overhead  %.2f ms (median wall), ratio %.2fx\n", ms(mc-mb), float64(mc)/float64(mb))
	fmt.Printf("cpu       baseline %.2f ms, candidate %.2f ms (median user+sys; less sensitive to a loaded machine)\n", ms(median(cb)), ms(median(cc)))
	fmt.Printf("peak RSS  %.1f MiB (candidate, ru_maxrss)\n", float64(peak)/1024)
}

func run(args []string) (time.Duration, time.Duration, int64) {
	cmd := exec.Command(args[0], args[1:]...)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", args[0], err)
		os.Exit(1)
	}
	d := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), ru.Maxrss
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
