#!/usr/bin/env bash
# Line-rate benchmark beside testpmd, in one run, on the same vdevs:
#   1. dpdk-testpmd, io forwarding, net_pcap (rx_pcap=…, infinite_rx=1) → net_null;
#   2. mnp-gateway on the same vdevs and the same pcap, one worker;
#   3. mnp-gateway with two rx queues and two workers (Debian's net_pcap takes
#      one rx_pcap per queue: the same file twice).
# for 128-byte and 1518-byte governed frames. Prints Mpps, gateway/testpmd and
# the gateway's cycles per packet.
#
#   scripts/bench-testpmd.sh [SECONDS]      (default 10; needs DPDK, run with nothing else busy)
#
# The pcap loops, so after its first pass every governed packet is a replay:
# the gateway still parses it, derives its key, checks its MAC and every
# policy check, and drops it at the replay window (the last check). The
# figure is packets judged per second; forwarded-frame rewrite and tx are in
# it only for the first pass. docs/performance.md records the results.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
out=target/bench-testpmd
mkdir -p "$out"
cargo build --release -q -p mnp-gateway -p mnp-bench
ghz=$(awk -F: '/cpu MHz/ {s+=$2; n++} END {printf "%.3f", s/n/1000}' /proc/cpuinfo)
eal=(--no-huge --no-pci --no-shconf -m 2048)

testpmd_mpps() { # pcap → Mpps (median of the per-second Rx-pps after warm-up)
    local log="$out/testpmd.log"
    timeout -s INT $((secs + 8)) dpdk-testpmd "${eal[@]}" --file-prefix "tp$$" -l 0-1 \
        --vdev "net_pcap0,rx_pcap=$1,infinite_rx=1" --vdev "net_null0,no-rx=1" -- \
        --forward-mode=io --auto-start --stats-period 1 --nb-cores=1 --total-num-mbufs=131072 >"$log" 2>&1 || true
    # Port 0's per-second Rx-pps (odd lines), once the pcap is loaded (non-zero).
    grep -E "Rx-pps:" "$log" | awk 'NR % 2 == 1 && $2 > 0 {print $2}' | sort -n |
        awk '{v[NR]=$1} END {if (NR) printf "%.3f", v[int((NR+1)/2)]/1e6; else print "nan"}'
}

gateway_mpps() { # pcap queues → Mpps (rx over the run, from the summary)
    local pcap=$1 queues=$2
    local cfg="$out/gw-$queues.toml" rx="" tx="" i
    for ((i = 0; i < queues; i++)); do rx+=",rx_pcap=$pcap"; tx+=",tx_pcap=/dev/null"; done
    mkdir -p "$out/keys"
    [ -f "$out/keys/bench.pub" ] || target/release/mnp-gateway keygen --dir "$out/keys" --name bench >/dev/null
    # The bench pcap is MACed with mnp-bench's fixed secret (07 × 32).
    printf '0707070707070707070707070707070707070707070707070707070707070707\n' > "$out/keys/bench.epoch1.secret"
    chmod 600 "$out/keys/bench.epoch1.secret"
    cat >"$cfg" <<TOML
[gateway]
id = 1
replay_credentials = 4096
buffers_per_worker = 1024
stats_interval_ms = 1000
[dpdk]
eal_args = ["--no-huge", "--no-pci", "--no-shconf", "-m", "2048", "--file-prefix", "gw$$-$queues"]
vdevs = ["net_pcap0${rx},infinite_rx=1${tx}", "net_null0,no-rx=1"]
mbufs = 131071
[zones]
edge = 10
core = 20
[[ports]]
name = "in0"
driver = "dpdk"
device = "net_pcap0"
mac = "02:00:00:00:00:01"
queues = $queues
[[ports]]
name = "out0"
driver = "dpdk"
device = "net_null0"
mac = "02:00:00:00:01:00"
queues = 0
[workers]
cores = [$( [ "$queues" -eq 1 ] && echo 1 || seq -s, 0 $((queues - 1)) )]
[[authorities]]
name = "bench"
id = 1
public_key = "keys/bench.pub"
zones = ["edge"]
max_trust = 4
epochs = [{ epoch = 1, secret = "keys/bench.epoch1.secret" }]
[[zone_rules]]
from = "edge"
to = "core"
min_trust = 1
route_floor = 2
[[routes]]
zone = "core"
port = "out0"
next_hop = "02:00:00:00:20:01"
trust = 3
TOML
    target/release/mnp-gateway run --config "$cfg" --duration "$secs" --now 1800000000 >"$out/gw-$queues.log" 2>&1
    awk '/^  rx / {gsub(/[()]/, "", $3); print $3}' "$out/gw-$queues.log"
}

printf '%-8s %-10s %12s %12s %12s %10s %12s\n' frame testpmd gw-1-worker gw-2-workers "gw/testpmd" "2w/1w" "cycles/pkt"
for frame in 128 1518; do
    pcap="$out/governed-$frame.pcap"
    # net_pcap's infinite_rx holds the whole file in mbufs: keep it to 32 Ki frames.
    target/release/mnp-bench pcap --out "$pcap" --packets 32768 --payload $((frame - 42 - 88)) --valid-only >/dev/null
    tp=$(testpmd_mpps "$pcap")
    g1=$(gateway_mpps "$pcap" 1)
    g2=$(gateway_mpps "$pcap" 2)
    awk -v f=$frame -v tp="$tp" -v g1="$g1" -v g2="$g2" -v ghz="$ghz" 'BEGIN {
        printf "%-8s %-10s %12s %12s %12.3f %10.2f %12.0f\n", f, tp, g1, g2, g1 / tp, g2 / g1, ghz * 1e3 / g1 }'
done
echo "(Mpps; cycles/packet at ${ghz} GHz for one worker; $secs s per run; logs in $out)"
