#!/usr/bin/env bash
# Benchmark of `inject lint` against the decompression floor: a generated
# 1 GiB (uncompressed), 6-layer gzip OCI image with 4 planted secrets (not
# committed; built in a temp dir), scanned by `inject lint`, compared with
# `gzip -dc` of every layer, two at a time (this machine has 2 cores).
#
# The machine is shared, so floor and lint run alternately ROUNDS times and
# the best wall time of each is compared; CPU time (user+sys) is printed too.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v /usr/bin/time >/dev/null || { echo "bench: install GNU time (apt-get install time)" >&2; exit 1; }

# The real binary users run; lintbench only generates the image.
CGO_ENABLED=0 go build -trimpath -o "$work/inject" ./cmd/inject
go build -o "$work/lintbench" ./lint/internal/lintbench
"$work/lintbench" gen "$work/img" >/dev/null
echo "image: $(du -sh "$work/img" | cut -f1) compressed, 1 GiB uncompressed, 6 gzip layers, 4 planted secrets"
cat "$work"/img/blobs/sha256/* >/dev/null # warm the page cache for both alike

best_floor=999999 best_lint=999999
for i in $(seq "$rounds"); do
  /usr/bin/time -f '%e %U %S' -o "$work/floor.txt" sh -c \
    "find '$work/img/blobs/sha256' -type f -size +1M -print0 | xargs -0 -P2 -n1 sh -c 'gzip -dc \"\$0\" >/dev/null'"
  read -r fw fu fs <"$work/floor.txt"
  set +e
  /usr/bin/time -f '%e %U %S %M' -o "$work/lint.txt" "$work/inject" lint --format json --output "$work/out.json" "oci:$work/img" 2>/dev/null
  code=$?
  set -e
  read -r lw lu ls rss < <(tail -n 1 "$work/lint.txt")
  printf 'round %d: floor %.2fs (cpu %.2fs)  lint %.2fs (cpu %.2fs, exit %d, %d MiB)\n' \
    "$i" "$fw" "$(echo "$fu + $fs" | bc)" "$lw" "$(echo "$lu + $ls" | bc)" "$code" "$((rss / 1024))"
  if (($(echo "$fw < $best_floor" | bc))); then best_floor=$fw fcpu=$(echo "$fu + $fs" | bc); fi
  if (($(echo "$lw < $best_lint" | bc))); then best_lint=$lw lcpu=$(echo "$lu + $ls" | bc) peak=$rss; fi
done
found=$(grep -c '"rule": "\(github-pat\|aws-access-key-id\|slack-bot-token\|vault-service-token\)"' "$work/out.json" || true)

printf '\nfloor (gzip -dc, 2 at a time): %.2fs  best of %d\n' "$best_floor" "$rounds"
printf 'inject lint:                   %.2fs  best of %d\n' "$best_lint" "$rounds"
printf 'ratio (wall):                  %.2fx  (target <= 1.3x)\n' "$(echo "$best_lint / $best_floor" | bc -l)"
printf 'ratio (CPU, user+sys):         %.2fx  (%.2fs vs %.2fs)\n' "$(echo "$lcpu / $fcpu" | bc -l)" "$lcpu" "$fcpu"
printf 'peak RSS:                      %d MiB (target < 150 MiB)\n' "$((peak / 1024))"
printf 'planted secrets found:         %d of 4\n' "$found"
printf 'load average:                  %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
