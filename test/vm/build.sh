#!/bin/sh
# Builds the qemu testbed once and caches it in <project>/.testbed/ (git-ignored):
#   .testbed/vmlinux          uncompressed kernel (booted through qemu's PVH entry); bzImage if that fails
#   .testbed/initramfs.cpio   busybox, the kernel modules the guest needs, the shared libraries of node
#   .testbed/testbed.env      what was built (kernel version, node, boot image) — read by vm.ts
# A second run with a complete cache only checks and exits. See test/vm/README.md.
#
# Usage: test/vm/build.sh [--force] [--quiet]     (--quiet: say nothing when the cache is up to date)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
cache="$project/.testbed"
force=0
quiet=0
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    --quiet) quiet=1 ;;
    *) echo "usage: $0 [--force] [--quiet]" >&2; exit 2 ;;
  esac
done

# Bump when the layout of the initramfs or of the stage-1 init changes: forces a rebuild.
format=3

say() { printf 'build.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- host packages -------------------------------------------------------------------------
packages="qemu-system-x86 qemu-system-data ipxe-qemu busybox-static cpio kmod xz-utils iproute2"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing:$missing"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
  else
    die "missing packages. Run as root:
  apt-get update && apt-get install -y --no-install-recommends$missing"
  fi
fi

node_bin=$(command -v node) || die "node is not on PATH"
node_bin=$(readlink -f "$node_bin")
# The libraries node needs (ldd prints "name => /path (addr)" or "/path (addr)").
# The native addons under node_modules count too: vitest's bundler (rolldown) needs librt, which
# node itself does not, and without it vitest cannot start in the guest (test/vm/hw-suite).
addons=$(find "$project/node_modules" -name '*.node' -path '*linux*x64*' 2>/dev/null | sort || true)
node_libs=$(for f in "$node_bin" $addons; do ldd "$f" 2>/dev/null || true; done |
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
inputs="format=$format node=$node_bin libs=$(echo "$node_libs" | tr '\n' ' ')"

# --- up to date? -----------------------------------------------------------------------------
if [ $force = 0 ] && [ -f "$cache/testbed.env" ]; then
  # shellcheck disable=SC1091
  . "$cache/testbed.env"
  if [ "${TESTBED_INPUTS:-}" = "$inputs" ] && [ -s "$cache/${TESTBED_KERNEL_IMAGE:-none}" ] \
     && [ -s "$cache/initramfs.cpio" ]; then
    [ $quiet = 1 ] || say "up to date (kernel $TESTBED_KERNEL_VERSION, $TESTBED_KERNEL_IMAGE) in $cache"
    exit 0
  fi
  say "cache incomplete or stale: rebuilding"
fi

start=$(date +%s)
mkdir -p "$cache"
work="$cache/work"
rm -rf "$work"
mkdir -p "$work"
# apt-get download as root wants a directory the _apt user can write to.
chmod 0777 "$work"

# --- kernel ----------------------------------------------------------------------------------
# The generic flavour that linux-image-amd64 depends on (the cloud flavour has no 9p).
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$kpkg" ] && [ "$(id -u)" = 0 ]; then
  apt-get update -q >&2
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 (run: apt-get update)"
kver=${kpkg#linux-image-}
say "kernel package $kpkg"
(cd "$work" && apt-get download -q "$kpkg" >&2 2>"$work/apt.log") \
  || { cat "$work/apt.log" >&2; die "apt-get download $kpkg failed (run: apt-get update)"; }
kroot="$work/kernel"
dpkg-deb -x "$work"/"$kpkg"_*.deb "$kroot"
rm -f "$work"/"$kpkg"_*.deb
kmods="$kroot/lib/modules/$kver"
[ -d "$kmods" ] || die "no modules for $kver in $kpkg"
depmod -b "$kroot" "$kver"

# Extract the uncompressed ELF from the bzImage: qemu boots it through the PVH entry point,
# which skips the real-mode setup and the in-guest decompression (~3 s under TCG).
bz="$kroot/boot/vmlinuz-$kver"
rm -f "$cache/vmlinux" "$cache/bzImage"
setup_sects=$(od -An -tu1 -j 497 -N1 "$bz" | tr -d ' ')        # 0x1f1
payload_off=$(od -An -tu4 -j 584 -N4 "$bz" | tr -d ' ')        # 0x248
start_byte=$(( (setup_sects + 1) * 512 + payload_off + 1 ))
magic=$(tail -c +"$start_byte" "$bz" | head -c 4 | od -An -tx1 | tr -d ' \n')
case "$magic" in
  fd377a58) decomp="xz -dc --single-stream" ;;
  1f8b08*)  decomp="gzip -dc" ;;
  28b52ffd) decomp="zstd -dc" ;;
  *)        decomp="" ;;
esac
image=bzImage
if [ -n "$decomp" ]; then
  tail -c +"$start_byte" "$bz" | $decomp > "$work/vmlinux" 2>/dev/null || true
  # Accept it only if it is an ELF with Xen/PVH notes (the kernel's PVH entry).
  if [ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] \
     && grep -aq 'xen-3.0' "$work/vmlinux"; then
    mv "$work/vmlinux" "$cache/vmlinux"
    image=vmlinux
  fi
fi
if [ $image = bzImage ]; then
  say "could not extract vmlinux (payload magic '$magic'); booting the bzImage"
  cp "$bz" "$cache/bzImage"
fi

# --- initramfs ---------------------------------------------------------------------------------
ir="$work/initramfs"
mkdir -p "$ir"/bin "$ir"/sbin "$ir"/usr/bin "$ir"/usr/sbin "$ir"/etc "$ir"/proc "$ir"/sys "$ir"/dev \
         "$ir"/tmp "$ir"/root "$ir"/run "$ir"/mnt
cp /bin/busybox "$ir/bin/busybox"
for applet in $("$ir/bin/busybox" --list-full); do
  [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$ir/$applet"
done

# Modules: each group is loaded in this order by the guest (insmod, no modprobe at boot).
#   base:   virtio PCI transport and 9p (the project share)
#   vfio:   vfio-pci with the type1 IOMMU backend (a softdep busybox modprobe would miss)
#   net:    virtio_net and the bridge, for the kernel-side mode
mkdir -p "$ir/etc/modules"
copied=" "
resolve() {  # group module...
  group=$1; shift
  : > "$ir/etc/modules/$group"
  for m in "$@"; do
    modprobe -d "$kroot" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}' |
    while read -r path; do
      rel=${path#"$kroot"/}
      # dependency lists repeat; keep the first occurrence per group
      grep -qxF "/$rel" "$ir/etc/modules/$group" || echo "/$rel" >> "$ir/etc/modules/$group"
      if [ ! -f "$ir/$rel" ]; then
        mkdir -p "$ir/$(dirname "$rel")"
        case "$path" in
          *.ko.xz)  xz -dc "$path" > "$ir/${rel%.xz}" ;;
          *.ko.zst) zstd -qdc "$path" > "$ir/${rel%.zst}" ;;
          *)        cp "$path" "$ir/$rel" ;;
        esac
      fi
    done
  done
  sed -i 's/\.ko\.\(xz\|zst\)$/.ko/' "$ir/etc/modules/$group"
}
resolve base virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev 9pnet_virtio 9p
resolve vfio vfio vfio_iommu_type1 vfio-pci
resolve net virtio_net bridge
cp "$kmods"/modules.order "$kmods"/modules.builtin "$kmods"/modules.builtin.modinfo "$ir/lib/modules/$kver/" 2>/dev/null || true
depmod -b "$ir" "$kver"

# Shared libraries for the host's node binary (the binary itself comes over 9p).
for lib in $node_libs; do
  mkdir -p "$ir$(dirname "$lib")"
  cp -L "$lib" "$ir$lib"
done
# node resolves via the interpreter path in its ELF header; /lib64 must exist too.
mkdir -p "$ir/lib64"
[ -e "$ir/lib64/ld-linux-x86-64.so.2" ] || ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$ir/lib64/ld-linux-x86-64.so.2"

printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ir/etc/passwd"
printf 'root:x:0:\n' > "$ir/etc/group"
echo "$kver" > "$ir/etc/kernel-version"

# Stage-1 init: mounts the shares and hands over to test/vm/guest-init.sh from the project share,
# so changing the guest logic needs no rebuild. It gets its settings from the kernel command line
# (ixy_root, ixy_mode, ixy_nics become environment variables of init).
cat > "$ir/init" <<'EOF'
#!/bin/sh
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs shm /dev/shm
fail() { echo "IXYVM:INIT-FAILED $*"; echo "IXYVM:EXIT code=255"; poweroff -f; }
# In the vfio modes keep virtio-pci away from the NICs from the start: with driver_override set,
# only vfio-pci may bind them.
if [ "$ixy_mode" != kernel ]; then
  for bdf in $(echo "$ixy_nics" | tr , ' '); do
    [ -e /sys/bus/pci/devices/$bdf ] && echo vfio-pci > /sys/bus/pci/devices/$bdf/driver_override
  done
fi
for m in $(cat /etc/modules/base); do insmod $m || fail "insmod $m"; done
o=trans=virtio,version=9p2000.L,msize=512000
mkdir -p /ctl /opt/host-node "$ixy_root"
mount -t 9p -o $o,cache=none ctl /ctl || fail "mount ctl share"
mount -t 9p -o $o,cache=loose,ro app "$ixy_root" || fail "mount project share at $ixy_root"
mount -t 9p -o $o,cache=loose,ro nodebin /opt/host-node || fail "mount node share"
ln -sf /opt/host-node/node /usr/bin/node
[ -f "$ixy_root/test/vm/guest-init.sh" ] || fail "no $ixy_root/test/vm/guest-init.sh"
exec /bin/sh "$ixy_root/test/vm/guest-init.sh"
EOF
chmod 0755 "$ir/init"

(cd "$ir" && find . | sort | cpio -o -H newc --quiet) > "$cache/initramfs.cpio.tmp"
mv "$cache/initramfs.cpio.tmp" "$cache/initramfs.cpio"

cat > "$cache/testbed.env" <<EOF
TESTBED_INPUTS='$inputs'
TESTBED_KERNEL_VERSION='$kver'
TESTBED_KERNEL_IMAGE='$image'
TESTBED_NODE='$node_bin'
TESTBED_BUILT='$(date -u +%Y-%m-%dT%H:%M:%SZ)'
EOF
rm -rf "$work"
say "built kernel $kver ($image), initramfs $(du -k "$cache/initramfs.cpio" | cut -f1) KiB in $(( $(date +%s) - start )) s"
