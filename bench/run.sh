#!/usr/bin/env bash
# Eddy benchmarks (release builds only): generates N bids once, runs each topology in bench/topologies
# at parallelism 1 and 2, and the hand-written single-threaded limit on the same file.
#   bench/run.sh            # N = 10,000,000
#   N=1000000 bench/run.sh  # quicker
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000000}
GEN=${GEN:-../shared/bench/gen_bids.py}
DATA=bench/data/bids-$N.csv
if [ ! -s "$DATA" ]; then
  mkdir -p bench/data
  echo "generating $N bids into $DATA ..." >&2
  python3 "$GEN" --n "$N" --out "$DATA"
fi
cargo build --release --quiet --bin eddy -p eddy -p eddy-bench-limit
cat "$DATA" > /dev/null # warm the page cache so the first run is not penalised

now() { date +%s.%N; }
for q in q1 q2 count; do
  limit_line=$(target/release/eddy-bench-limit "$q" "$DATA")
  limit_rps=$(sed -E 's/.*rec_per_s=([0-9.]+).*/\1/' <<<"$limit_line")
  echo "$limit_line"
  for p in 1 2; do
    t0=$(now)
    target/release/eddy run "bench/topologies/$q.yaml" --quiet \
      --set "parallelism=$p" --set "sources.bids.config.path=$DATA"
    t1=$(now)
    awk -v q="$q" -v p="$p" -v n="$N" -v t0="$t0" -v t1="$t1" -v lim="$limit_rps" 'BEGIN {
      w = t1 - t0; r = n / w;
      printf "eddy %s p=%d n=%d wall_s=%.3f rec_per_s=%.0f eddy/limit=%.2f\n", q, p, n, w, r, r / lim }'
  done
done
