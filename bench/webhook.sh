#!/usr/bin/env bash
# Admission latency of the Kubernetes webhook for a pod with 10 secret
# annotations (p50/p99 through its HTTP handler, from one run):
#   command  the pod gives a command: no image lookup (the baseline)
#   warm     no command, the image config cached by digest (one HEAD request)
#   cold     no command, an empty cache (HEAD + manifest + config blob)
# against go-containerregistry's in-process registry on loopback, and the
# webhook's RSS at rest (started with gen-certs certificates, 3 s idle).
#   bash bench/webhook.sh [N]        # N reviews a case, default 2000
set -euo pipefail
N=${1:-2000}
cd "$(dirname "$0")/.."
out=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT

go test ./webhook -run '^$' -bench '^BenchmarkAdmission$' -benchtime "${N}x" -count 1 >"$out/bench.txt"
awk '
  /^BenchmarkAdmission\// {
    split($1, n, "/"); sub(/-[0-9]+$/, "", n[2])
    for (i = 2; i < NF; i++) { if ($(i+1) == "p50-µs") p50[n[2]] = $i; if ($(i+1) == "p99-µs") p99[n[2]] = $i }
    order[++k] = n[2]
  }
  END {
    printf "%-8s %10s %10s %12s %12s\n", "case", "p50 (µs)", "p99 (µs)", "p50 / cmd", "p99 / cmd"
    for (j = 1; j <= k; j++) { c = order[j]
      printf "%-8s %10d %10d %11.2fx %11.2fx\n", c, p50[c], p99[c], p50[c] / p50["command"], p99[c] / p99["command"] }
  }' "$out/bench.txt"

CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out/broker-webhook" ./cmd/broker-webhook
"$out/broker-webhook" gen-certs --out "$out/certs" >/dev/null
"$out/broker-webhook" --listen 127.0.0.1:0 --tls-cert "$out/certs/tls.crt" --tls-key "$out/certs/tls.key" \
  --image secretbroker:bench --no-pull-secrets --log-level warn &
pid=$!
sleep 3
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
size=$(stat -c %s "$out/broker-webhook")
echo "webhook RSS at rest: $((rss / 1024)) MiB ($rss KiB); binary $((size / 1048576)) MiB (static, stripped)"
