#!/usr/bin/env bash
# Benchmark of `inject lint` against the decompression floor: a generated
# 1 GiB (uncompressed), 6-layer gzip OCI image with 4 planted secrets (not
# committed; built in a temp dir), scanned by `inject lint`, compared with
# decompressing every layer, two at a time (this machine has 2 cores).
#
# Two floors, both run in each round:
#   - "floor": klauspost/compress gzip, the decompressor lint itself uses,
#     with the same 64 KiB bufio.Reader and a buffer the size of the rule
#     scanner's (`lintbench floor`). This is the honest one: lint's extra
#     CPU over it is what scanning costs.
#   - "gzip -dc": GNU gzip, about twice klauspost's CPU on this data. Ratios
#     against it are printed for comparison with earlier runs only; they
#     hide the scan's cost behind a slower decompressor.
# BASE=<git rev> also builds `inject` at that revision and times it in the
# same rounds, so before and after share the machine's load.
#
# The machine is shared, so everything runs alternately ROUNDS times; the
# CPU time (user+sys) ratios use each command's lowest CPU time over the
# rounds, and the wall ratio the best wall times.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v /usr/bin/time >/dev/null || { echo "bench: install GNU time (apt-get install time)" >&2; exit 1; }

# The real binary users run; lintbench generates the image and is the floor.
CGO_ENABLED=0 go build -trimpath -o "$work/inject" ./cmd/inject
go build -o "$work/lintbench" ./lint/internal/lintbench
names=(floor gzip lint)
if [[ -n "${BASE:-}" ]]; then
  mkdir "$work/base"
  git archive "$BASE" | tar -x -C "$work/base"
  (cd "$work/base" && CGO_ENABLED=0 go build -trimpath -o "$work/inject-base" ./cmd/inject)
  names+=(base)
fi
"$work/lintbench" gen "$work/img" >/dev/null
echo "image: $(du -sh "$work/img" | cut -f1) compressed, 1 GiB uncompressed, 6 gzip layers, 4 planted secrets"
cat "$work"/img/blobs/sha256/* >/dev/null # warm the page cache for all alike

# run NAME: one timed run, printed as "NAME wall cpu".
run() {
  local code=0
  case $1 in
  floor) /usr/bin/time -f '%e %U %S %M' -o "$work/t" sh -c \
    "find '$work/img/blobs/sha256' -type f -size +1M -print0 | xargs -0 -P2 -n1 '$work/lintbench' floor" ;;
  gzip) /usr/bin/time -f '%e %U %S %M' -o "$work/t" sh -c \
    "find '$work/img/blobs/sha256' -type f -size +1M -print0 | xargs -0 -P2 -n1 sh -c 'gzip -dc \"\$0\" >/dev/null'" ;;
  lint | base)
    local bin=$work/inject
    [[ $1 == base ]] && bin=$work/inject-base
    /usr/bin/time -f '%e %U %S %M' -o "$work/t" "$bin" lint --format json --output "$work/out-$1.json" "oci:$work/img" 2>/dev/null || code=$?
    ;;
  esac
  read -r w u s m < <(tail -n 1 "$work/t")
  echo "$1 $w $(echo "$u + $s" | bc) $((m / 1024)) $code"
}

declare -A wall cpu rss
for i in $(seq "$rounds"); do
  line="round $i:"
  for n in "${names[@]}"; do
    read -r _ w c m code < <(run "$n")
    line+=$(printf '  %s %.2fs (cpu %.2fs)' "$n" "$w" "$c")
    [[ $n == lint || $n == base ]] && line+=" exit $code, ${m} MiB"
    if [[ -z ${wall[$n]:-} ]] || (($(echo "$w < ${wall[$n]}" | bc))); then wall[$n]=$w; fi
    if [[ -z ${cpu[$n]:-} ]] || (($(echo "$c < ${cpu[$n]}" | bc))); then cpu[$n]=$c; fi
    if [[ -z ${rss[$n]:-} ]] || ((m > ${rss[$n]})); then rss[$n]=$m; fi
  done
  echo "$line"
done
found() { grep -c '"rule": "\(github-pat\|aws-access-key-id\|slack-bot-token\|vault-service-token\)"' "$work/out-$1.json" || true; }

printf '\nfloor (klauspost gzip, as lint): %.2fs wall, %.2fs cpu  (best of %d)\n' "${wall[floor]}" "${cpu[floor]}" "$rounds"
printf 'gzip -dc (GNU gzip):             %.2fs wall, %.2fs cpu\n' "${wall[gzip]}" "${cpu[gzip]}"
for n in "${names[@]:2}"; do
  label="inject lint"
  [[ $n == base ]] && label="inject lint at $BASE"
  printf '\n%s: %.2fs wall, %.2fs cpu, peak RSS %d MiB, planted secrets found %d of 4\n' "$label" "${wall[$n]}" "${cpu[$n]}" "${rss[$n]}" "$(found "$n")"
  printf '  ratio to floor (CPU, user+sys):    %.2fx  (target <= 1.1x)\n' "$(echo "${cpu[$n]} / ${cpu[floor]}" | bc -l)"
  printf '  ratio to floor (wall):             %.2fx\n' "$(echo "${wall[$n]} / ${wall[floor]}" | bc -l)"
  printf '  ratio to gzip -dc (CPU, user+sys): %.2fx  (the earlier runs'"'"' measure)\n' "$(echo "${cpu[$n]} / ${cpu[gzip]}" | bc -l)"
done
printf '\nload average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
