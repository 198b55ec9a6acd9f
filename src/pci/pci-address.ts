/**
 * PCI addresses: domain:bus:device.function, e.g. "0000:01:00.0". "01:00.0" means domain 0.
 */
export class PciAddress {
  readonly domain: number;
  readonly bus: number;
  readonly device: number;
  readonly func: number;

  private constructor(domain: number, bus: number, device: number, func: number) {
    this.domain = domain;
    this.bus = bus;
    this.device = device;
    this.func = func;
  }

  /** Parses "0000:01:00.0" or "01:00.0"; TypeError on anything else. */
  static parse(text: string): PciAddress {
    if (typeof text !== "string") throw new TypeError(`PCI address must be a string like 0000:01:00.0, got ${typeof text}`);
    const m = /^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/.exec(text.trim());
    if (!m) {
      throw new TypeError(`malformed PCI address "${text}": expected domain:bus:device.function like 0000:01:00.0 (ixy-devbind --status lists them)`);
    }
    const device = parseInt(m[3]!, 16);
    if (device > 0x1f) throw new TypeError(`malformed PCI address "${text}": device number must be 00 to 1f (expected a form like 0000:01:00.0)`);
    return new PciAddress(m[1] ? parseInt(m[1], 16) : 0, parseInt(m[2]!, 16), device, parseInt(m[4]!, 10));
  }

  toString(): string {
    const h = (v: number, n: number) => v.toString(16).padStart(n, "0");
    return `${h(this.domain, 4)}:${h(this.bus, 2)}:${h(this.device, 2)}.${this.func}`;
  }
}
