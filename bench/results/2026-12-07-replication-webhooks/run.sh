#!/bin/bash
# One labelled bench run: run.sh LABEL SCENARIO BOOTSTRAP [extra args]
set -u
label=$1 scenario=$2 bootstrap=$3; shift 3
cd /work/wt/bench-cost
out=/tmp/bc-runs/$label-$scenario
mkdir -p $out
ticks() { for p in 5196 3929 4182 4513; do awk '{printf "%d ", $14+$15}' /proc/$p/stat; done; }
echo "$(date -u +%T) start $label $scenario load $(cut -d' ' -f1-3 /proc/loadavg) jticks(single,n1,n2,n3) $(ticks)" >> /tmp/bc-runs/log
uv run --extra dev python -m bench $scenario --quick --bootstrap $bootstrap --out $out "$@" > $out/stdout 2>&1
echo "$(date -u +%T) end $label $scenario rc $? load $(cut -d' ' -f1-3 /proc/loadavg) jticks(single,n1,n2,n3) $(ticks)" >> /tmp/bc-runs/log
