#!/usr/bin/env bash
# Start-up cost of inject: median wall time of `inject -- /bin/true` with 20
# file secrets against `/bin/true` alone (interleaved, one run), inject's
# peak RSS, and its binary size. Targets: overhead < 10 ms, RSS < 20 MiB.
# Usage: [TAGS=noonepassword_sdk] bench/startup.sh [RUNS]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
work=$(mktemp -d)
shm=$(mktemp -d /dev/shm/secretbroker-bench.XXXXXX)
trap 'rm -rf "$work" "$shm"' EXIT

CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -tags "${TAGS:-}" -o "$work/inject" ./cmd/inject
go build -o "$work/startup" ./bench/startup

{
  echo "secrets:"
  for i in $(seq 1 20); do
    printf 'k%d: fake-bench-value-%d\n' "$i" "$i" >> "$work/secrets.yaml"
    printf '  - {name: s%d, ref: "file://%s/secrets.yaml#k%d"}\n' "$i" "$work" "$i"
  done
} > "$work/inject.yaml"

echo "inject binary: $(du -k "$work/inject" | cut -f1) KiB ($(stat -c %s "$work/inject") bytes, static, stripped)"
"$work/startup" -n "$runs" -baseline /bin/true \
  "$work/inject" --config "$work/inject.yaml" --dir "$shm/s" --log-level error -- /bin/true
