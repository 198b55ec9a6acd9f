/**
 * Makes a modern virtio-net NIC do DMA to an IOVA that was never mapped, on purpose, to check that
 * the testbed notices IOMMU faults (the guest kernel logs "DMAR: ... fault addr ...", the launcher
 * reports IXYVM:DMAR faults=N > 0). Not a driver: just enough VFIO and virtio 1.0 to enable one
 * queue whose rings live at an unmapped address.
 *
 *   test/vm/run.sh --mode modern -- node .testbed/dist/test/vm/dmar-fault.js 0000:00:01.0
 *   (compile first: tsx test/vm/compile.ts test/vm/dmar-fault.ts; or run it with tsx)
 */
import koffi from 'koffi';
import { readlinkSync } from 'node:fs';
import { basename } from 'node:path';

const bdf = process.argv[2] ?? process.env.IXY_NIC0 ?? '0000:00:01.0';
const libc = koffi.load('libc.so.6');
const open = libc.func('int open(const char *path, int flags)');
const ioctlInt = libc.func('int ioctl(int fd, unsigned long request, unsigned long arg)');
const ioctlPtr = libc.func('int ioctl(int fd, unsigned long request, void *arg)');
const ioctlStr = libc.func('int ioctl(int fd, unsigned long request, const char *arg)');
const pread = libc.func('int64_t pread(int fd, void *buf, size_t count, int64_t offset)');
const pwrite = libc.func('int64_t pwrite(int fd, const void *buf, size_t count, int64_t offset)');
const mmap = libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)');
const usleep = libc.func('int usleep(unsigned int usec)');

const VFIO_GROUP_SET_CONTAINER = 0x3b68;
const VFIO_SET_IOMMU = 0x3b66;
const VFIO_GROUP_GET_DEVICE_FD = 0x3b6a;
const VFIO_DEVICE_GET_REGION_INFO = 0x3b6c;
const VFIO_TYPE1v2_IOMMU = 3;
const CONFIG_REGION = 7;
const UNMAPPED_IOVA = 0x4000_0000; // nothing is mapped in this container

function check(what: string, rc: number | bigint): number {
  if (Number(rc) < 0) throw new Error(`${what} failed (errno ${koffi.errno()})`);
  return Number(rc);
}

function regionInfo(device: number, index: number): { size: number; offset: number } {
  const info = new Uint32Array(8); // argsz, flags, index, cap_offset, size (u64), offset (u64)
  info[0] = 32;
  info[2] = index;
  check(`region info ${index}`, ioctlPtr(device, VFIO_DEVICE_GET_REGION_INFO, info));
  return { size: info[4]! + info[5]! * 2 ** 32, offset: info[6]! + info[7]! * 2 ** 32 };
}

const container = check('open container', open('/dev/vfio/vfio', 2));
const group = check('open group', open(`/dev/vfio/${basename(readlinkSync(`/sys/bus/pci/devices/${bdf}/iommu_group`))}`, 2));
check('set container', ioctlPtr(group, VFIO_GROUP_SET_CONTAINER, new Int32Array([container])));
check('set iommu', ioctlInt(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
const device = check('get device fd', ioctlStr(group, VFIO_GROUP_GET_DEVICE_FD, bdf));

// PCI config space: enable memory space and bus mastering, then find the virtio common config.
const config = regionInfo(device, CONFIG_REGION);
const cfg = new Uint8Array(256);
check('read config', pread(device, cfg, 256, config.offset));
const command = new Uint16Array([(cfg[4]! | (cfg[5]! << 8)) | 0x6]);
check('write command', pwrite(device, command, 2, config.offset + 4));
let common: { bar: number; offset: number } | undefined;
let notify: { bar: number; offset: number; multiplier: number } | undefined;
for (let p = cfg[0x34]!; p !== 0; p = cfg[p + 1]!) {
  if (cfg[p] !== 0x09) continue; // vendor-specific: struct virtio_pci_cap
  const type = cfg[p + 3];
  const bar = cfg[p + 4]!;
  const offset = cfg[p + 8]! | (cfg[p + 9]! << 8) | (cfg[p + 10]! << 16) | (cfg[p + 11]! << 24);
  if (type === 1) common = { bar, offset };
  if (type === 2) notify = { bar, offset, multiplier: cfg[p + 16]! | (cfg[p + 17]! << 8) };
}
if (!common || !notify || common.bar !== notify.bar) throw new Error(`${bdf}: no virtio 1.0 capabilities`);
const bar = regionInfo(device, common.bar);
const base = mmap(null, bar.size, 3, 1, device, bar.offset) as bigint; // PROT_READ|WRITE, MAP_SHARED
if (base === 0xffffffffffffffffn) throw new Error(`mmap BAR${common.bar} failed (errno ${koffi.errno()})`);
const mem = koffi.view(base, bar.size);
const u8 = new Uint8Array(mem, common.offset, 0x38);
const u16 = new Uint16Array(mem, common.offset, 0x1c);
const u32 = new Uint32Array(mem, common.offset, 0x0e);

// virtio 1.0, 3.1.1: reset, ACKNOWLEDGE, DRIVER, features (VERSION_1 and ACCESS_PLATFORM), FEATURES_OK
u8[0x14] = 0;
while (u8[0x14] !== 0) usleep(100);
u8[0x14] = 1 | 2;
u32[2] = 1; // driver_feature_select: bits 32..63
u32[3] = (1 << 0) | (1 << 1); // VIRTIO_F_VERSION_1 (32), VIRTIO_F_ACCESS_PLATFORM (33)
u32[2] = 0;
u32[3] = 0;
u8[0x14] = 1 | 2 | 8;
if ((u8[0x14]! & 8) === 0) throw new Error('device refused the features');
// receive queue 0 and transmit queue 1, all rings at IOVAs the IOMMU does not map
const notifyOffs: number[] = [];
for (const q of [0, 1]) {
  u16[0x16 / 2] = q;
  notifyOffs.push(u16[0x1e / 2]!);
  const rings = UNMAPPED_IOVA + q * 0x10000;
  for (const [reg, iova] of [[0x20, rings], [0x28, rings + 0x4000], [0x30, rings + 0x8000]] as const) {
    u32[reg / 4] = iova >>> 0;
    u32[reg / 4 + 1] = 0;
  }
  u16[0x1c / 2] = 1;
}
const queueSize = u16[0x18 / 2]!;
u8[0x14] = 1 | 2 | 8 | 4; // DRIVER_OK
// kick both queues: the device reads the available ring's index, through the IOMMU
for (const off of notifyOffs) new Uint16Array(mem, notify.offset + off * notify.multiplier, 1)[0] = notifyOffs.indexOf(off);
usleep(200_000);
console.log(JSON.stringify({ bdf, queueSize, status: u8[0x14], iova: UNMAPPED_IOVA.toString(16) }));
u8[0x14] = 0; // reset: the device lets go of the rings
