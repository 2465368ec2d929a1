#!/usr/bin/env bash
# Throughput on kernel interfaces (issue #12): the gateway on af_packet and
# on af_xdp ports beside testpmd io on the same ports, same veths, same
# generator, in one run.
#
#   ns S: mnp-bench gen (af_packet on sv) ──veth── gv0 ┐ ns G: testpmd io or
#                                                      │ mnp-gateway, 1 worker
#   ns R: (frames dropped by the kernel)  ──veth── gv1 ┘ (af_packet | af_xdp)
#
# Traffic: fresh valid governed frames (system clock, new sequence numbers),
# raw EtherType so the receiving kernel discards them cheaply; 1024
# credentials. A kernel path is not expected to reach DPDK's vdev rates:
# what counts is the gateway's ratio to testpmd io on the same path.
# Prints, per driver: testpmd Mpps, gateway Mpps, the ratio, and the
# gateway's forwarded share; ends with one line
#   veth_ratio af_packet=R af_xdp=R
#
#   scripts/bench-veth.sh [SECONDS] [FRAME]   (default 6 s, 128 B; needs root, DPDK, iproute2)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
secs=${1:-6}
frame=${2:-128}
cargo build --release -q -p mnp-gateway -p mnp-bench
gw=$PWD/target/release/mnp-gateway
bench=$PWD/target/release/mnp-bench
out=$(mkdir -p target/bench-veth && cd target/bench-veth && pwd)
S=mnpbs$$ G=mnpbg$$ R=mnpbr$$

cleanup() { for n in $S $G $R; do ip netns del "$n" 2>/dev/null || true; done; }
trap cleanup EXIT
for n in $S $G $R; do ip netns add "$n"; done
q="numtxqueues 1 numrxqueues 1"
# shellcheck disable=SC2086
ip -n $G link add gv0 $q type veth peer name sv $q netns $S
# shellcheck disable=SC2086
ip -n $G link add gv1 $q type veth peer name rv $q netns $R
for pair in "$S sv" "$G gv0" "$G gv1" "$R rv"; do
    set -- $pair
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 "net.ipv6.conf.$2.disable_ipv6=1"
    ip -n "$1" link set "$2" up
done


generate() { # → the generator's summary
    ip netns exec $S "$bench" gen --mode txonly --device net_af_packet0 --frame "$frame" --encap ether \
        --system-clock --seconds "$secs" --credentials 1024 \
        --eal "--no-huge --no-pci --no-shconf -m 512 -l 0 --file-prefix mnpbgen$$ --vdev net_af_packet0,iface=sv" 2>/dev/null |
        grep '^txonly' || true
}

vdev() { # driver iface index → a vdev argument
    case $1 in
        af_packet) echo "net_af_packet$3,iface=$2,qpairs=1" ;;
        af_xdp) echo "net_af_xdp$3,iface=$2,start_queue=0,queue_count=1" ;;
    esac
}

testpmd_mpps() { # driver → Mpps received on gv0
    local log="$out/testpmd-$1.log"
    ip netns exec $G timeout -s INT $((secs + 5)) dpdk-testpmd --no-huge --no-pci --no-shconf -m 1024 \
        --file-prefix "mnpbtp$$" -l 0-1 --vdev "$(vdev "$1" gv0 0)" --vdev "$(vdev "$1" gv1 1)" -- \
        --forward-mode=io --auto-start --stats-period 1 --nb-cores=1 --total-num-mbufs=16384 >"$log" 2>&1 &
    local tp=$!
    sleep 3
    generate >"$out/gen-testpmd-$1.log"
    wait "$tp" || true
    grep -E "Rx-pps:" "$log" | awk 'NR % 2 == 1 {print $2 / 1e6}' | steady | median
}

gateway_mpps() { # driver → "Mpps share"
    local cfg="$out/gw-$1.toml" log="$out/gw-$1.log"
    bench_keys "$gw" "$out"
    cat >"$cfg" <<TOML
[gateway]
id = 1
replay_credentials = 4096
buffers_per_worker = 1024
state_dir = "$out/state"
[dpdk]
eal_args = ["--no-huge", "--no-pci", "--no-shconf", "-m", "1024", "--file-prefix", "mnpbgw$$"]
mbufs = 16383
[[ports]]
name = "in0"
driver = "$1"
iface = "gv0"
mac = "02:00:00:00:00:01"
[[ports]]
name = "out0"
driver = "$1"
iface = "gv1"
mac = "02:00:00:00:01:00"
queues = 0
[workers]
cores = [1]
TOML
    bench_policy "$out" >>"$cfg"
    ip netns exec $G "$gw" run --config "$cfg" --duration $((secs + 5)) >"$log" 2>&1 &
    local g=$!
    sleep 3
    generate >"$out/gen-gw-$1.log"
    wait "$g" || true
    local mpps share
    mpps=$(awk '/^\[ *[0-9.]+s\] rx / {print $4}' "$log" | steady | median)
    share=$(awk '/^  rx / {rx=$2} /^  forwarded / {f=$2} END {if (rx) printf "%.4f", f / rx; else print "0"}' "$log")
    echo "$mpps $share"
}

printf '%-10s %6s %10s %10s %7s %9s\n' driver frame testpmd gateway ratio fwd-share
ratios=()
for d in af_packet af_xdp; do
    tp=$(testpmd_mpps $d)
    read -r g share < <(gateway_mpps $d)
    ratio=$(awk -v t="$tp" -v g="$g" 'BEGIN {if (t > 0) printf "%.3f", g / t; else print "nan"}')
    printf '%-10s %6s %10s %10s %7s %9s\n' "$d" "$frame" "$tp" "$g" "$ratio" "$share"
    ratios+=("$d=$ratio")
done
echo "(Mpps, medians of per-second rates, first and last second left out; $secs s per run; logs in $out)"
echo "veth_ratio ${ratios[*]}"
