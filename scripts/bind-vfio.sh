#!/bin/sh
# Binds a PCI device to vfio-pci so that ixy.ts can drive it from user space.
#   scripts/bind-vfio.sh 0000:01:00.0 [more addresses...]
# Needs root, an IOMMU (intel_iommu=on / amd_iommu=on) and the vfio-pci module.
set -eu

if [ "$#" -lt 1 ]; then
  echo "usage: $0 <pci-address> [<pci-address>...]   e.g. $0 0000:01:00.0 (see lspci -D)" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "$0: must run as root (writes to /sys/bus/pci)" >&2
  exit 1
fi
if [ ! -d /sys/bus/pci/drivers/vfio-pci ]; then
  modprobe vfio-pci 2>/dev/null || true
  # busybox modprobe ignores softdeps: the IOMMU backend must be loaded explicitly.
  modprobe vfio_iommu_type1 2>/dev/null || true
fi
if [ ! -d /sys/bus/pci/drivers/vfio-pci ]; then
  echo "$0: the vfio-pci driver is not available: install your kernel's modules (modprobe vfio-pci failed)" >&2
  exit 1
fi

for addr in "$@"; do
  case "$addr" in
    ????:??:??.?) ;;
    ??:??.?) addr="0000:$addr" ;;
    *) echo "$0: malformed PCI address '$addr' (expected 0000:01:00.0)" >&2; exit 2 ;;
  esac
  dev=/sys/bus/pci/devices/$addr
  if [ ! -d "$dev" ]; then
    echo "$0: no PCI device at $addr (see lspci -D)" >&2
    exit 1
  fi
  if [ ! -e "$dev/iommu_group" ]; then
    echo "$0: $addr has no IOMMU group: enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line)" >&2
    exit 1
  fi
  current=""
  [ -e "$dev/driver" ] && current=$(basename "$(readlink "$dev/driver")")
  if [ "$current" = "vfio-pci" ]; then
    echo "$addr: already bound to vfio-pci (group $(basename "$(readlink "$dev/iommu_group")"))"
    continue
  fi
  [ -n "$current" ] && echo "$addr" > "$dev/driver/unbind"
  echo vfio-pci > "$dev/driver_override"
  echo "$addr" > /sys/bus/pci/drivers_probe
  now=""
  [ -e "$dev/driver" ] && now=$(basename "$(readlink "$dev/driver")")
  if [ "$now" != "vfio-pci" ]; then
    echo "$0: binding $addr to vfio-pci failed (driver now: ${now:-none}); see dmesg" >&2
    exit 1
  fi
  group=$(basename "$(readlink "$dev/iommu_group")")
  echo "$addr: bound to vfio-pci (was ${current:-no driver}); /dev/vfio/$group"
done
