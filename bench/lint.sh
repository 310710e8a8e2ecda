#!/usr/bin/env bash
# Benchmark of `inject lint` against the decompression floor: a generated
# 1 GiB (uncompressed), 6-layer gzip OCI image with planted secrets, scanned
# once, compared with `gzip -dc` of every layer, two at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v /usr/bin/time >/dev/null || { echo "install GNU time (apt-get install time)"; exit 1; }

go build -o "$work/inject" ./lint/internal/lintbench
"$work/inject" gen "$work/img" >/dev/null
echo "image: $(du -sh "$work/img" | cut -f1) compressed, 6 layers"

sync
# Warm the page cache for both runs alike.
cat "$work"/img/blobs/sha256/* >/dev/null
/usr/bin/time -f '%e %U %S' -o "$work/floor.txt" sh -c \
  "find '$work/img/blobs/sha256' -type f -size +1M -print0 | xargs -0 -P2 -n1 sh -c 'gzip -dc \"\$0\" >/dev/null'"
read -r floor fu fs <"$work/floor.txt"

set +e
/usr/bin/time -v -o "$work/time.txt" "$work/inject" lint --format json --output "$work/out.json" "oci:$work/img"
code=$?
set -e
wall=$(grep 'Elapsed (wall clock)' "$work/time.txt" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
rss=$(grep 'Maximum resident set size' "$work/time.txt" | awk '{print $NF}')
lu=$(grep 'User time' "$work/time.txt" | awk '{print $NF}')
ls_=$(grep 'System time' "$work/time.txt" | awk '{print $NF}')
found=$(grep -c '"rule": "\(github-pat\|aws-access-key-id\|slack-bot-token\|vault-service-token\)"' "$work/out.json" || true)

printf 'floor (gzip -dc, 2 at a time): %.2fs\n' "$floor"
printf 'inject lint:                   %.2fs  (exit %d)\n' "$wall" "$code"
printf 'ratio (wall):                  %.2fx  (target <= 1.3x)\n' "$(echo "$wall / $floor" | bc -l)"
printf 'ratio (CPU, user+sys):         %.2fx  (%.2fs vs %.2fs; steadier on a shared machine)\n' \
  "$(echo "($lu + $ls_) / ($fu + $fs)" | bc -l)" "$(echo "$lu + $ls_" | bc -l)" "$(echo "$fu + $fs" | bc -l)"
printf 'load average at the end:       %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'peak RSS:                      %d MiB (target < 150 MiB)\n' "$((rss / 1024))"
printf 'planted secrets found:         %d of 4\n' "$found"
