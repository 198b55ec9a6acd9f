/**
 * Checks the struct layouts, CMSG_* arithmetic and constants of src/sys/socket-structs.ts and
 * src/sys/libc.ts against the system's own headers: a small C program, compiled with gcc, prints
 * what the headers say. Skipped, with the reason printed, where gcc is missing.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import * as L from "../../src/sys/libc.ts";
import * as S from "../../src/sys/socket-structs.ts";
import { countGcs } from "../helpers/gc.ts";

const gccFound = spawnSync("gcc", ["--version"]).status === 0;
if (!gccFound) console.warn("skipping socket struct layout checks: gcc not found (apt-get install gcc)");

const PROGRAM = String.raw`
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <linux/memfd.h>

#define P(name, value) printf("%s %ld\n", name, (long)(value))
#define OFF(s, f) P(#s "." #f, offsetof(struct s, f))
#define SIZE(s) P(#s ".SIZE", sizeof(struct s))
#define C(name) P(#name, name)

int main(void) {
  OFF(iovec, iov_base); OFF(iovec, iov_len); SIZE(iovec);
  OFF(msghdr, msg_name); OFF(msghdr, msg_namelen); OFF(msghdr, msg_iov); OFF(msghdr, msg_iovlen);
  OFF(msghdr, msg_control); OFF(msghdr, msg_controllen); OFF(msghdr, msg_flags); SIZE(msghdr);
  OFF(cmsghdr, cmsg_len); OFF(cmsghdr, cmsg_level); OFF(cmsghdr, cmsg_type); SIZE(cmsghdr);
  OFF(sockaddr_un, sun_family); OFF(sockaddr_un, sun_path); SIZE(sockaddr_un);
  OFF(stat, st_size); SIZE(stat);
  for (int n = 0; n <= 8; n++) {
    printf("CMSG_LEN(%d) %ld\n", 4 * n, (long)CMSG_LEN(4 * n));
    printf("CMSG_SPACE(%d) %ld\n", 4 * n, (long)CMSG_SPACE(4 * n));
  }
  struct cmsghdr c;
  P("CMSG_DATA_OFFSET", (unsigned char *)CMSG_DATA(&c) - (unsigned char *)&c);
  C(AF_UNIX); C(SOCK_STREAM); C(SOCK_NONBLOCK); C(SOCK_CLOEXEC); C(SOL_SOCKET); C(SCM_RIGHTS);
  C(MSG_CTRUNC); C(MSG_TRUNC); C(MSG_DONTWAIT); C(MSG_NOSIGNAL); C(MSG_CMSG_CLOEXEC);
  C(EFD_SEMAPHORE); C(EFD_NONBLOCK); C(EFD_CLOEXEC);
  C(MFD_CLOEXEC); C(MFD_ALLOW_SEALING); C(MFD_HUGETLB); C(MFD_HUGE_2MB);
  C(O_RDWR); C(O_CREAT); C(O_EXCL); C(O_NONBLOCK); C(O_CLOEXEC);
  C(F_GETFD); C(F_GETFL); C(F_SETFL); C(FD_CLOEXEC);
  C(F_ADD_SEALS); C(F_GET_SEALS); C(F_SEAL_SEAL); C(F_SEAL_SHRINK); C(F_SEAL_GROW); C(F_SEAL_WRITE);
  C(MAP_SHARED); C(MAP_POPULATE); C(PROT_READ); C(PROT_WRITE);
  return 0;
}
`;

/** name -> value, as the C program prints them. */
function headerValues(): Map<string, number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ixy-socket-structs-"));
  try {
    const exe = path.join(dir, "layout");
    const cc = spawnSync("gcc", ["-o", exe, "-x", "c", "-"], { input: PROGRAM, encoding: "utf8" });
    if (cc.status !== 0) throw new Error(`gcc failed:\n${cc.stderr}`);
    const run = spawnSync(exe, { encoding: "utf8" });
    if (run.status !== 0) throw new Error(`layout program failed: ${run.stderr}`);
    return new Map(
      run.stdout
        .trim()
        .split("\n")
        .map((line) => {
          const [name, value] = line.split(" ");
          return [name!, Number(value)] as const;
        }),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!gccFound)("socket structs match the system's headers", () => {
  const c = gccFound ? headerValues() : new Map<string, number>();
  const fromHeader = (prefix: string, layout: Record<string, number>) =>
    Object.fromEntries(Object.keys(layout).map((f) => [f, c.get(`${prefix}.${f}`)]));

  const layouts = { iovec: S.iovec, msghdr: S.msghdr, cmsghdr: S.cmsghdr, sockaddr_un: S.sockaddr_un, stat: L.stat_layout };
  for (const [name, ours] of Object.entries(layouts)) {
    it(`struct ${name} has the headers' field offsets and size`, () => {
      expect(fromHeader(name, ours)).toEqual(ours);
    });
  }

  it("CMSG_LEN, CMSG_SPACE and CMSG_DATA agree for 0 to 8 file descriptors", () => {
    for (let n = 0; n <= S.MAX_FDS; n++) {
      expect(S.cmsgLen(4 * n), `CMSG_LEN(${4 * n})`).toBe(c.get(`CMSG_LEN(${4 * n})`));
      expect(S.cmsgSpace(4 * n), `CMSG_SPACE(${4 * n})`).toBe(c.get(`CMSG_SPACE(${4 * n})`));
    }
    expect(S.CMSG_DATA_OFFSET).toBe(c.get("CMSG_DATA_OFFSET"));
  });

  it("constants have the headers' values", () => {
    const names = [
      "AF_UNIX", "SOCK_STREAM", "SOCK_NONBLOCK", "SOCK_CLOEXEC", "SOL_SOCKET", "SCM_RIGHTS",
      "MSG_CTRUNC", "MSG_TRUNC", "MSG_DONTWAIT", "MSG_NOSIGNAL", "MSG_CMSG_CLOEXEC",
      "EFD_SEMAPHORE", "EFD_NONBLOCK", "EFD_CLOEXEC",
      "MFD_CLOEXEC", "MFD_ALLOW_SEALING", "MFD_HUGETLB", "MFD_HUGE_2MB",
      "O_RDWR", "O_CREAT", "O_EXCL", "O_NONBLOCK", "O_CLOEXEC",
      "F_GETFD", "F_GETFL", "F_SETFL", "FD_CLOEXEC",
      "F_ADD_SEALS", "F_GET_SEALS", "F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE",
      "MAP_SHARED", "MAP_POPULATE", "PROT_READ", "PROT_WRITE",
    ] as const;
    for (const name of names) expect(L[name], name).toBe(c.get(name));
  });
});

describe("MessageHeader", () => {
  it("lays out a send of two fds as the kernel expects, pointing at its own iovec and control part", () => {
    const m = new S.MessageHeader();
    const data = new Uint8Array([1, 2, 3]);
    m.prepareSend(data, [7, 9]);
    const u64 = new BigUint64Array(m.bytes.buffer);
    const u32 = new Uint32Array(m.bytes.buffer);
    const i32 = new Int32Array(m.bytes.buffer);
    const base = L.addressOf(m.bytes);
    const iov = base + BigInt(S.msghdr.SIZE);
    const control = iov + BigInt(S.iovec.SIZE);
    expect(u64[S.msghdr.msg_iov / 8]).toBe(iov);
    expect(u64[S.msghdr.msg_iovlen / 8]).toBe(1n);
    expect(u64[S.msghdr.msg_control / 8]).toBe(control);
    expect(u64[S.msghdr.msg_controllen / 8]).toBe(BigInt(S.cmsgSpace(8)));
    expect(u64[(S.msghdr.SIZE + S.iovec.iov_base) / 8]).toBe(L.addressOf(data));
    expect(u64[(S.msghdr.SIZE + S.iovec.iov_len) / 8]).toBe(3n);
    const c = S.msghdr.SIZE + S.iovec.SIZE;
    expect(u64[c / 8]).toBe(BigInt(S.cmsgLen(8)));
    expect(u32[(c + S.cmsghdr.cmsg_level) / 4]).toBe(L.SOL_SOCKET);
    expect(u32[(c + S.cmsghdr.cmsg_type) / 4]).toBe(L.SCM_RIGHTS);
    expect(Array.from(i32.subarray((c + S.CMSG_DATA_OFFSET) / 4, (c + S.CMSG_DATA_OFFSET) / 4 + 2))).toEqual([7, 9]);
    m.prepareSend(data, []);
    expect(u64[S.msghdr.msg_control / 8]).toBe(0n);
    expect(u64[S.msghdr.msg_controllen / 8]).toBe(0n);
  });

  it("refuses more than 8 fds and numbers that are no fds", () => {
    const m = new S.MessageHeader();
    expect(() => m.prepareSend(new Uint8Array(1), [0, 1, 2, 3, 4, 5, 6, 7, 8])).toThrow(RangeError);
    expect(() => m.prepareSend(new Uint8Array(1), [-1])).toThrow(RangeError);
    expect(() => m.prepareSend(new Uint8Array(1), [1.5])).toThrow(RangeError);
  });

  it("addressOf gives a small (on-heap) typed array an address that survives garbage collection", async () => {
    const small = Uint8Array.of(1, 2, 3);
    const before = L.addressOf(small);
    const gcs = await countGcs(() => {
      let garbage: Uint8Array[] = [];
      for (let i = 0; i < 200_000; i++) {
        garbage.push(new Uint8Array(16));
        if (garbage.length === 1000) garbage = [];
      }
    });
    expect(gcs).toBeGreaterThan(0); // the young generation was collected, moving what it holds
    expect(L.addressOf(small)).toBe(before);
    expect(Array.from(new Uint8Array(L.view(before, 3)))).toEqual([1, 2, 3]);
  });

  it("sockaddrUn refuses paths too long for sun_path", () => {
    expect(S.sockaddrUn("/tmp/x").length).toBe(2 + 6 + 1);
    expect(() => S.sockaddrUn("/" + "x".repeat(107))).toThrow(/shorter path/);
    expect(() => S.sockaddrUn("")).toThrow(RangeError);
  });
});
