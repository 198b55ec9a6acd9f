/**
 * A guest-side sanity check of the testbed, independent of the driver: loads koffi, opens the VFIO
 * container, checks that the type1 IOMMU backend is there (busybox modprobe skips that softdep),
 * and reads the status of the NICs' IOMMU groups. Prints one JSON line and exits 0 when all is well.
 *
 *   test/vm/run.sh --mode modern -- tsx test/vm/probe.ts $IXY_NIC0 $IXY_NIC1
 */
import koffi from 'koffi';
import { readlinkSync } from 'node:fs';
import { basename } from 'node:path';

const t0 = performance.now();
const libc = koffi.load('libc.so.6');
const open = libc.func('int open(const char *path, int flags)');
const close = libc.func('int close(int fd)');
const ioctl = libc.func('int ioctl(int fd, unsigned long request, ...)');
const ioctlPtr = libc.func('int ioctl(int fd, unsigned long request, void *arg)');

const O_RDWR = 2;
const VFIO_GET_API_VERSION = 0x3b64;
const VFIO_CHECK_EXTENSION = 0x3b65;
const VFIO_GROUP_GET_STATUS = 0x3b67;
const VFIO_TYPE1v2_IOMMU = 3;
const VFIO_GROUP_FLAGS_VIABLE = 1;

const report: Record<string, unknown> = { node: process.version, koffi: koffi.version };
let ok = true;
const container = open('/dev/vfio/vfio', O_RDWR) as number;
report.containerFd = container;
if (container < 0) ok = false;
else {
  report.apiVersion = ioctl(container, VFIO_GET_API_VERSION);
  report.type1v2 = ioctl(container, VFIO_CHECK_EXTENSION, 'int', VFIO_TYPE1v2_IOMMU);
  if (report.apiVersion !== 0 || report.type1v2 !== 1) ok = false;
  close(container);
}
const groups: Record<string, unknown>[] = [];
for (const bdf of process.argv.slice(2)) {
  const group = basename(readlinkSync(`/sys/bus/pci/devices/${bdf}/iommu_group`));
  const fd = open(`/dev/vfio/${group}`, O_RDWR) as number;
  const status = new Uint32Array([8, 0]); // struct vfio_group_status { argsz, flags }
  const rc = fd >= 0 ? (ioctlPtr(fd, VFIO_GROUP_GET_STATUS, status) as number) : -1;
  if (fd >= 0) close(fd);
  const viable = rc === 0 && (status[1]! & VFIO_GROUP_FLAGS_VIABLE) !== 0;
  if (!viable) ok = false;
  groups.push({ bdf, group, fd, rc, viable });
}
report.groups = groups;
report.ms = Math.round(performance.now() - t0);
report.ok = ok;
console.log(JSON.stringify(report));
process.exitCode = ok ? 0 : 1;
