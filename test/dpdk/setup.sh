#!/usr/bin/env bash
# Prepares this machine for the DPDK-based vhost-user tests and bench/vhost: installs Debian's
# dpdk-dev (dpdk-testpmd with the net_vhost and net_virtio_user PMDs), reserves 2 MiB hugepages
# and mounts hugetlbfs on /dev/hugepages. Run as root. Idempotent: a second run changes nothing
# and says so.
#
#   bash test/dpdk/setup.sh            # 512 hugepages
#   HUGEPAGES=1024 bash test/dpdk/setup.sh
#
# Keeps more hugepages if more are reserved. Exits non-zero if dpdk-testpmd cannot be installed,
# hugetlbfs cannot be mounted, or no hugepage at all could be reserved; warns (exit 0) if the
# kernel gave fewer pages than asked.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

want=${HUGEPAGES:-512}
pkg=dpdk-dev
t_start=$(date +%s.%N)
say() { echo "dpdk setup: $*"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

if [ "$(id -u)" -ne 0 ]; then
  say "must run as root (it installs packages, reserves hugepages and mounts hugetlbfs)" >&2
  exit 1
fi

# --- the package --------------------------------------------------------------------------------
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' && command -v dpdk-testpmd >/dev/null; then
  say "$pkg $(dpkg-query -W -f='${Version}' "$pkg") already installed: nothing to install"
else
  t0=$(date +%s.%N)
  # apt-get update only if apt cannot plan the install from the lists it has.
  if ! apt-get install -s -qq --no-install-recommends "$pkg" >/dev/null 2>&1; then
    say "$pkg is not installable from the current package lists: apt-get update"
    apt-get update -qq
  fi
  log=$(mktemp)
  if ! apt-get install -y --no-install-recommends "$pkg" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    say "apt-get install $pkg failed" >&2
    exit 1
  fi
  # "Need to get 25.3 MB of archives." and "After this operation, 110 MB of additional disk space will be used."
  got=$(grep -oE 'Need to get [^ ]+ [kMG]?B(/[^ ]+ [kMG]?B)? of archives' "$log" | sed 's/^Need to get //; s/ of archives$//' || true)
  disk=$(grep -oE 'After this operation, [^ ]+ [kMG]?B' "$log" | sed 's/^After this operation, //' || true)
  # "8 upgraded, 214 newly installed, 0 to remove and 40 not upgraded."
  counts=$(grep -oE '^[0-9]+ upgraded, [0-9]+ newly installed' "$log" | head -n1 || true)
  rm -f "$log"
  case "$got" in
    "") got="nothing (all in apt's cache)" ;;
    */*) got="${got%%/*} of ${got#*/} (the rest was in apt's cache)" ;;
  esac
  say "installed $pkg $(dpkg-query -W -f='${Version}' "$pkg") in $(elapsed "$t0") s: ${counts:-? packages}; downloaded $got; ${disk:-?} more on disk"
fi
if ! command -v dpdk-testpmd >/dev/null; then
  say "$pkg is installed but there is no dpdk-testpmd on PATH" >&2
  exit 1
fi

# --- hugepages ----------------------------------------------------------------------------------
nr=/proc/sys/vm/nr_hugepages
have=$(cat "$nr")
if [ "$have" -ge "$want" ]; then
  say "hugepages: $have x 2 MiB reserved (>= $want): left as they are"
else
  echo "$want" >"$nr"
  got=$(cat "$nr")
  if [ "$got" -lt "$want" ]; then
    # Memory is fragmented: compact it and ask once more.
    echo 1 >/proc/sys/vm/compact_memory 2>/dev/null || true
    echo "$want" >"$nr"
    got=$(cat "$nr")
  fi
  if [ "$got" -lt "$want" ]; then
    say "WARNING: asked the kernel for $want hugepages, it gave $got (was $have)"
  else
    say "hugepages: reserved $got x 2 MiB (was $have)"
  fi
  if [ "$got" -eq 0 ]; then
    say "no hugepage could be reserved" >&2
    exit 1
  fi
fi
grep -E 'HugePages_(Total|Free)' /proc/meminfo | sed 's/^/dpdk setup:   /'

# --- hugetlbfs ----------------------------------------------------------------------------------
mnt=/dev/hugepages
if findmnt -n -t hugetlbfs "$mnt" >/dev/null 2>&1; then
  say "hugetlbfs already mounted on $mnt"
else
  mkdir -p "$mnt"
  mount -t hugetlbfs nodev "$mnt"
  say "mounted hugetlbfs on $mnt"
fi

say "done in $(elapsed "$t_start") s: $(command -v dpdk-testpmd), $pkg $(dpkg-query -W -f='${Version}' "$pkg")"
