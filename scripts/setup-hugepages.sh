#!/usr/bin/env bash
# Reserve 2 MiB hugepages for DPDK on an appliance and mount hugetlbfs.
#   scripts/setup-hugepages.sh [PAGES]   (default 1024 = 2 GiB, on every NUMA node)
# Then drop "--no-huge" from [dpdk] eal_args. Needs root.
set -euo pipefail
pages=${1:-1024}
for node in /sys/devices/system/node/node*; do
    echo "$pages" > "$node/hugepages/hugepages-2048kB/nr_hugepages"
    echo "$(basename "$node"): $(cat "$node/hugepages/hugepages-2048kB/nr_hugepages") x 2 MiB"
done
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
grep -i huge /proc/meminfo
