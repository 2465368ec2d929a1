# shellcheck shell=bash
# Shared by scripts/bench-testpmd.sh and scripts/bench-veth.sh: medians of
# per-second rates, and the keys and policy of the gateway under test —
# authority `bench` (id 1) whose epoch 1 holds mnp-bench's default secret
# (07 × 32, which the generator MACs with), zone edge (10) → core (20),
# routed through the port named `out0`.

median() { # values on stdin → median ("nan" if none)
    sort -g | awk '{v[NR]=$1} END {if (NR) printf "%.3f", v[int((NR+1)/2)]; else print "nan"}'
}
steady() { # values on stdin → the non-zero ones, less the first and last (ramps) when there are 4 or more
    awk '$1 > 0 {v[++n]=$1} END {lo = n >= 4 ? 2 : 1; hi = n >= 4 ? n - 1 : n; for (i = lo; i <= hi; i++) print v[i]}'
}

bench_keys() { # gateway-binary dir → the authority's files in dir/keys
    mkdir -p "$2/keys"
    [ -f "$2/keys/bench.pub" ] || "$1" keygen --dir "$2/keys" --name bench >/dev/null
    printf '0707070707070707070707070707070707070707070707070707070707070707\n' >"$2/keys/bench.epoch1.secret"
    chmod 600 "$2/keys/bench.epoch1.secret"
}

bench_policy() { # dir (holding keys/) → the policy sections of the config, on stdout
    cat <<TOML
[zones]
edge = 10
core = 20
[[authorities]]
name = "bench"
id = 1
public_key = "$1/keys/bench.pub"
zones = ["edge"]
max_trust = 4
epochs = [{ epoch = 1, secret = "$1/keys/bench.epoch1.secret" }]
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
}
