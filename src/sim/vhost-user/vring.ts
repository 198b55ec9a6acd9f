/**
 * What a vhost-user backend knows of one ring besides the ring itself (which the model's core
 * holds while it runs): the SET_VRING_NUM / _BASE / _ADDR values, the kick, call and error
 * eventfds, and the ring state of vhost-user: Ring states: "stopped" until a kick starts it,
 * then "started but disabled" or "started and enabled".
 */
import { close } from "../../sys/libc.ts";
import type { AnyDeviceRing } from "../virtio/virtio-core.ts";

/** The front-end's virtual addresses of the three parts (SET_VRING_ADDR). */
export interface UserRingAddresses {
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
}

export type VringState = "stopped" | "disabled" | "enabled";

export class Vring {
  readonly index: number;
  /** SET_VRING_NUM (0: not set yet). */
  num = 0;
  /** SET_VRING_BASE: the next available index the device takes when the ring starts. */
  base = 0;
  addresses: UserRingAddresses | null = null;
  kickFd = -1;
  callFd = -1;
  errFd = -1;
  /** SET_VRING_KICK with the invalid-fd flag: the front-end never kicks, the backend polls. */
  polled = false;
  /** SET_VRING_ENABLE (only with VHOST_USER_F_PROTOCOL_FEATURES: rings start disabled then). */
  enableRequested = false;
  /** A use of the ring while disabled was reported (session.ts); cleared when SET_VRING_ENABLE changes the state. */
  reportedDisabled = false;
  /** The ring in the model's core while started. */
  ring: AnyDeviceRing | null = null;
  /** Kicks read from the kick eventfd, and calls written to the call eventfd (this connection). */
  kicks = 0;
  calls = 0;
  /** used.idx when the call fd was last considered. */
  signaledUsed = 0;

  constructor(index: number) {
    this.index = index;
  }

  get started(): boolean {
    return this.ring !== null;
  }

  /** Where the ring stands: `protocolFeatures` says whether SET_VRING_ENABLE decides (else started means enabled). */
  state(protocolFeatures: boolean): VringState {
    if (this.ring === null) return "stopped";
    return !protocolFeatures || this.enableRequested ? "enabled" : "disabled";
  }

  /** Replaces the kick fd (closing the old one). */
  setKick(fd: number): void {
    closeFd(this.kickFd);
    this.kickFd = fd;
  }

  setCall(fd: number): void {
    closeFd(this.callFd);
    this.callFd = fd;
  }

  setErr(fd: number): void {
    closeFd(this.errFd);
    this.errFd = fd;
  }

  /** Closes every eventfd: the ring is stopped, or the connection is gone. */
  closeFds(): void {
    this.setKick(-1);
    this.setCall(-1);
    this.setErr(-1);
  }
}

function closeFd(fd: number): void {
  if (fd < 0) return;
  try {
    close(fd);
  } catch {
    // already closed
  }
}
