#!/usr/bin/env bash
# Steady-state figures for a broker holding N secrets from the file provider
# (default 1000), refreshing every second: RSS after several cycles, CPU
# seconds per cycle and bytes written per cycle with nothing changed.
#   [TAGS=noonepassword_sdk] bash bench/broker_rss.sh [N] [SECONDS]
set -euo pipefail
N=${1:-1000}
SECS=${2:-15}
cd "$(dirname "$0")/.."
out=$(mktemp -d)
shm=$(mktemp -d /dev/shm/broker-bench.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$out" "$shm"; }
trap cleanup EXIT
CGO_ENABLED=0 go build -trimpath ${TAGS:+-tags "$TAGS"} -o "$out/broker" ./cmd/broker
mkdir "$out/up"
{
  echo "secrets:"
  for i in $(seq -w 0 $((N - 1))); do
    printf 'v: fake-%s\n' "$i" > "$out/up/s$i.yaml"
    echo "  - {name: s$i, ref: \"file://s$i.yaml#v\"}"
  done
  echo "providers: {file: {root: $out/up}}"
} > "$out/broker.yaml"
sock="$shm/b.sock"
"$out/broker" --config "$out/broker.yaml" --dir "$shm/s" --listen "$sock" --refresh 1s --log-level warn &
pid=$!
metric() { curl -s --unix-socket "$sock" http://b/metrics | awk -v m="$1" '$1 == m {print $2}'; }
for _ in $(seq 100); do "$out/broker" healthcheck --listen "$sock" >/dev/null 2>&1 && break; sleep 0.1; done
c0=$(metric secretbroker_refresh_cycles_total); w0=$(metric secretbroker_written_bytes_total)
t0=$(awk '{print $14 + $15}' /proc/$pid/stat)
sleep "$SECS"
c1=$(metric secretbroker_refresh_cycles_total); w1=$(metric secretbroker_written_bytes_total)
t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
hz=$(getconf CLK_TCK)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
anon=$(awk '/RssAnon/ {print $2}' /proc/$pid/status)
filerss=$(awk '/RssFile/ {print $2}' /proc/$pid/status)
cycles=$(awk -v a="$c0" -v b="$c1" 'BEGIN {print b - a}')
echo "secrets:                      $N"
echo "refresh cycles measured:      $cycles (over ${SECS}s, refresh 1s)"
awk -v r="$rss" -v h="$hwm" -v a="$anon" -v f="$filerss" 'BEGIN {printf "steady-state RSS:             %.1f MiB (peak %.1f MiB; anonymous %.1f MiB, file-backed %.1f MiB)\n", r/1024, h/1024, a/1024, f/1024}'
awk -v a="$t0" -v b="$t1" -v c="$cycles" -v hz="$hz" 'BEGIN {printf "CPU per cycle, nothing changed: %.4f s\n", (b-a)/hz/c}'
awk -v a="$w0" -v b="$w1" -v c="$cycles" 'BEGIN {printf "bytes written per cycle:      %.0f\n", (b-a)/c}'
