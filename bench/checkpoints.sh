#!/usr/bin/env bash
# Checkpoint costs (release build): the `window` topology without checkpoints, with a checkpoint every
# second on the heap backend and on redb (throughput ratio, checkpoint count, duration and size from the
# job's log), and the restore time of one million keys of state from the local filesystem.
#   bench/checkpoints.sh            # N = 10,000,000 bids
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000000}
GEN=${GEN:-../shared/bench/gen_bids.py}
DATA=bench/data/bids-$N.csv
if [ ! -s "$DATA" ]; then
  mkdir -p bench/data
  python3 "$GEN" --n "$N" --out "$DATA"
fi
cargo build --release --quiet -p eddy --bins
cat "$DATA" > /dev/null
RUNS=${RUNS:-3}
now() { date +%s.%N; }
best_of() { # topology -> best wall time in s; the last run's log in target/bench-chk.log
  local best="" t0 t1 wall
  for _ in $(seq "$RUNS"); do
    rm -rf /tmp/eddy-bench-chk /tmp/eddy-bench-state
    t0=$(now)
    EDDY_LOG=eddy_actors=info target/release/eddy run "bench/topologies/$1.yaml" --quiet --no-http \
      --set "sources.bids.config.path=$DATA" 2> target/bench-chk.log
    t1=$(now)
    wall=$(awk -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f", t1 - t0 }')
    if [ -z "$best" ] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$wall; fi
  done
  echo "$best"
}
stats() { # checkpoint count, median duration and median size from the log of the last run
  grep "checkpoint complete" target/bench-chk.log | sed -E 's/.*size=([0-9]+) ms=([0-9]+).*/\1 \2/' |
    sort -n -k2 | awk '{ s[NR] = $1; d[NR] = $2 } END { if (NR == 0) { print "checkpoints=0"; exit }
      printf "checkpoints=%d median_ms=%d max_ms=%d median_size_bytes=%d\n", NR, d[int((NR + 1) / 2)], d[NR], s[int((NR + 1) / 2)] }'
}
base=$(best_of window)
echo "window no-checkpoints wall_s=$base rec_per_s=$(awk -v n="$N" -v w="$base" 'BEGIN { printf "%.0f", n / w }')"
for b in heap redb; do
  w=$(best_of "window-chk-$b")
  echo "window checkpoints-1s-$b wall_s=$w rec_per_s=$(awk -v n="$N" -v w="$w" 'BEGIN { printf "%.0f", n / w }') ratio=$(awk -v a="$base" -v b="$w" 'BEGIN { printf "%.2f", a / b }') $(stats)"
done
# Restore of 1M keys: run to the end (the final checkpoint holds 1M keys), then restore it; the source is
# at its end, so the second run's time is the restore.
rm -rf /tmp/eddy-bench-chk
EDDY_LOG=eddy_actors=info target/release/eddy run bench/topologies/keys-1m.yaml --quiet --no-http 2> target/bench-chk.log
echo "keys-1m final $(stats)"
t0=$(now)
EDDY_LOG=eddy_actors=info,eddy=info target/release/eddy run bench/topologies/keys-1m.yaml --no-http --restore latest 2> target/bench-restore.log
t1=$(now)
echo "keys-1m whole_run_s=$(awk -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f", t1 - t0 }') (process start to end: read, restore, end of input, a final checkpoint of 1M keys)"
echo "keys-1m read_and_verify: $(grep -o 'read and verified in [0-9]* ms' target/bench-restore.log | head -1)"
echo "keys-1m keyed restore: $(grep 'keyed state restored' target/bench-restore.log | sed -E 's/.*(keys=[0-9]+ ms=[0-9]+).*/\1/' | head -1)"
