#!/bin/sh
# Stage 2 of the guest's init (busybox sh, PID 1). Stage 1 (in the initramfs, see build.sh) has
# mounted /proc, /sys, /dev, the project share at $ixy_root (read-only), the host's node directory at
# /opt/host-node and the per-run control share at /ctl (writable), then exec'd this file.
#
# It prepares the NICs for the mode, runs /ctl/cmd.sh from the project folder, and prints marker
# lines that vm.ts parses (each on a line of its own, prefix "IXYVM:"):
#   IXYVM:BOOTED uptime=<s>
#   IXYVM:NIC index=<i> bdf=<bdf> id=<vendor:device> driver=<name> group=<iommu group> netdev=<ifname>
#   IXYVM:READY                     the command starts now
#   IXYVM:EXIT code=<n>             the command's exit status
#   IXYVM:DMAR faults=<n>           DMAR faults in the kernel log (fault lines follow as IXYVM:DMAR-LINE)
#   IXYVM:INIT-FAILED <why>         setup failed (then EXIT code=255)
# Then it powers the machine off.
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
export HOME=/root TMPDIR=/tmp TERM=dumb NO_COLOR=1

marker() { printf '\nIXYVM:%s\n' "$*"; }
finish() {  # exit-code
  marker "EXIT code=$1"
  # Each fault is one line ("DMAR: [DMA Read NO_PASID] Request device [00:01.0] fault addr ...",
  # or an interrupt-remapping fault), usually after a "DRHD: handling fault status" line, which
  # is printed too but not counted.
  faults=$(dmesg | grep -i dmar | grep -i fault)
  if [ -n "$faults" ]; then
    marker "DMAR faults=$(echo "$faults" | grep -vci 'handling fault status')"
    echo "$faults" | sed 's/^/IXYVM:DMAR-LINE /'
  else
    marker "DMAR faults=0"
  fi
  sync
  poweroff -f
}
fail() { marker "INIT-FAILED $*"; finish 255; }

# Loads a module list from the initramfs, skipping modules that are already loaded.
load() {  # group
  for m in $(cat "/etc/modules/$1"); do
    name=$(basename "$m" .ko | tr - _)
    [ -d "/sys/module/$name" ] || insmod "$m" || fail "insmod $m"
  done
}

. /ctl/config.sh || fail "no /ctl/config.sh"
marker "BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"

# A worktree's node_modules and .testbed link into another checkout: vm.ts shares it (tag "links").
if [ -n "$ixy_links" ]; then
  mkdir -p "$ixy_links" && mount -t 9p -o trans=virtio,version=9p2000.L,ro links "$ixy_links" || fail "mount $ixy_links"
fi

mkdir -p /dev/hugepages
mount -t hugetlbfs -o pagesize=2M hugetlbfs /dev/hugepages || fail "mount hugetlbfs"

if [ "$ixy_mode" = kernel ]; then
  load net
else
  load vfio
fi

i=0
for bdf in $(echo "$ixy_nics" | tr , ' '); do
  dev=/sys/bus/pci/devices/$bdf
  [ -d "$dev" ] || fail "no PCI device $bdf"
  if [ "$ixy_mode" != kernel ]; then
    echo vfio-pci > "$dev/driver_override"
    if [ -e "$dev/driver" ]; then
      cur=$(basename "$(readlink "$dev/driver")")
      [ "$cur" = vfio-pci ] || echo "$bdf" > "$dev/driver/unbind"
    fi
    [ -e "$dev/driver" ] || echo "$bdf" > /sys/bus/pci/drivers_probe
  fi
  driver=none
  [ -e "$dev/driver" ] && driver=$(basename "$(readlink "$dev/driver")")
  group=none
  [ -e "$dev/iommu_group" ] && group=$(basename "$(readlink "$dev/iommu_group")")
  netdev=none
  for n in "$dev"/virtio*/net/* "$dev"/net/*; do [ -e "$n" ] && netdev=$(basename "$n"); done
  id="$(cut -c3- "$dev/vendor"):$(cut -c3- "$dev/device")"
  marker "NIC index=$i bdf=$bdf id=$id driver=$driver group=$group netdev=$netdev"
  if [ "$ixy_mode" != kernel ]; then
    [ "$driver" = vfio-pci ] || fail "$bdf is bound to $driver, not vfio-pci"
    [ -e "/dev/vfio/$group" ] || fail "no /dev/vfio/$group for $bdf"
  fi
  eval "export IXY_NIC$i=$bdf"
  [ "$netdev" != none ] && eval "export IXY_NETDEV$i=$netdev"
  i=$((i + 1))
done

export IXY_MODE="$ixy_mode" IXY_PROJECT="$ixy_root" IXY_CTL=/ctl
export PATH="$ixy_root/node_modules/.bin:$PATH"
cd "$ixy_root" || fail "cd $ixy_root"

# The command runs in a session of its own, in the foreground (so SIGINT is not ignored in it);
# a background watcher signals the whole session when the host creates /ctl/stop.
rm -f /tmp/cmd.pid
(
  while [ ! -s /tmp/cmd.pid ]; do sleep 0.05; done
  pid=$(cat /tmp/cmd.pid)
  while kill -0 "$pid" 2>/dev/null; do
    if [ -e /ctl/stop ] || [ "$(cut -d. -f1 /proc/uptime)" -ge "${IXY_DEADLINE:-999999}" ]; then
      kill -"${IXY_STOP_SIGNAL:-INT}" -"$pid" 2>/dev/null
      t=0
      while kill -0 "$pid" 2>/dev/null && [ $t -lt "${IXY_STOP_GRACE:-50}" ]; do sleep 0.1; t=$((t + 1)); done
      kill -TERM -"$pid" 2>/dev/null; sleep 1; kill -KILL -"$pid" 2>/dev/null
      exit 0
    fi
    sleep 0.2
  done
) &
watcher=$!

# The wrapper shell leaves on a stop signal with the status of the command it was running, so a
# program that exits cleanly on SIGINT reports 0 rather than the shell's own 130.
printf '%s\n' "trap 'exit \$?' INT TERM" '. /ctl/cmd.sh' > /tmp/run-cmd.sh
marker "READY"
sh -c 'echo $$ > /tmp/cmd.pid; exec setsid sh /tmp/run-cmd.sh' < /dev/null
rc=$?
kill "$watcher" 2>/dev/null
finish $rc
