#!/usr/bin/env bash
# Hand a NIC to DPDK (vfio-pci) or give it back to the kernel.
#   scripts/bind-nic.sh 0000:03:00.0 [0000:03:00.1 ...]     bind to vfio-pci
#   scripts/bind-nic.sh --unbind 0000:03:00.0 ixgbe         back to a kernel driver
# Uses dpdk-devbind.py from Debian's dpdk package. Needs root and an IOMMU
# (intel_iommu=on / amd_iommu=on) for vfio-pci.
set -euo pipefail
command -v dpdk-devbind.py >/dev/null || { echo "install Debian's dpdk package (dpdk-devbind.py)" >&2; exit 1; }
if [ "${1:-}" = "--unbind" ]; then
    dpdk-devbind.py --bind="${3:?kernel driver}" "${2:?PCI address}"
else
    modprobe vfio-pci
    dpdk-devbind.py --bind=vfio-pci "$@"
fi
dpdk-devbind.py --status-dev net
