#!/usr/bin/env bash
cd /work/main
end=$(( $(date +%s) + ${1:-6000} ))
i=0
while [ "$(date +%s)" -lt "$end" ]; do
  [ -f /tmp/hunt2/pause ] && { sleep 5; continue; }
  i=$((i+1)); d=$([ $((i % 2)) = 0 ] && echo q8 || echo f32)
  node bench/js/node-bench.mjs ours classify 2 3 $d > /tmp/hunt2/last.out 2>&1 &
  pid=$!; w=0
  while kill -0 $pid 2>/dev/null && [ $w -lt 180 ]; do sleep 1; w=$((w+1)); done
  if kill -0 $pid 2>/dev/null; then
    echo "$(date -u +%T) run $i ($d) still running after 180 s; stacks:" >> /tmp/hunt2/hangs.txt
    timeout 60 node bench/js/stacks.mjs $pid >> /tmp/hunt2/hangs.txt 2>&1
    kill -9 $pid; wait $pid 2>/dev/null
  else
    wait $pid; echo "$(date -u +%T) run $i $d rc=$? ${w}s" >> /tmp/hunt2/runs.txt
  fi
done
echo "runs: $i" >> /tmp/hunt2/done.txt
