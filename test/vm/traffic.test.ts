// Host-only tests of the testbed's traffic tool: frame building, verification and counting.
// No qemu here; the VM tests are wired into `npm run test:vm` separately.
import { describe, expect, it } from 'vitest';
import {
  buildFrame, ETHERTYPE, HEADER_LENGTH, MAX_FRAME, MIN_FRAME, parseTrafficArgs, sizeSequence,
  StreamCounter, verifyFrame,
} from './traffic.ts';
import { wiresFor } from './wires.ts';

describe('buildFrame() and verifyFrame()', () => {
  const header = { stream: 1, runId: 0xdeadbeef, seq: 12345, length: 200, sentAtUs: 42 };

  it('round-trips a frame', () => {
    const f = buildFrame(header);
    expect(f.length).toBe(200);
    expect((f[12]! << 8) | f[13]!).toBe(ETHERTYPE);
    expect(Array.from(f.subarray(0, 6))).toEqual([255, 255, 255, 255, 255, 255]);
    expect(verifyFrame(f)).toEqual({ kind: 'ok', stream: 1, runId: 0xdeadbeef, seq: 12345, length: 200, sentAtUs: 42 });
  });

  it('builds identical frames for identical headers and different payloads for different ones', () => {
    expect(buildFrame(header)).toEqual(buildFrame(header));
    const other = buildFrame({ ...header, seq: 12346 });
    expect(other.subarray(HEADER_LENGTH)).not.toEqual(buildFrame(header).subarray(HEADER_LENGTH));
  });

  it('accepts the smallest and the largest frame', () => {
    for (const length of [MIN_FRAME, MAX_FRAME]) expect(verifyFrame(buildFrame({ ...header, length })).kind).toBe('ok');
  });

  it('rejects lengths outside 60..1514', () => {
    expect(() => buildFrame({ ...header, length: 59 })).toThrow(RangeError);
    expect(() => buildFrame({ ...header, length: 1515 })).toThrow(RangeError);
  });

  it('reports every single flipped bit outside the MACs as corruption', () => {
    const f = buildFrame({ ...header, length: 64 });
    for (let byte = 12; byte < f.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const g = f.slice();
        g[byte]! ^= 1 << bit;
        const v = verifyFrame(g);
        expect(v.kind === 'ok', `byte ${byte} bit ${bit}`).toBe(false);
      }
    }
  });

  it('accepts rewritten MACs', () => {
    const f = buildFrame(header);
    f.fill(0x02, 0, 12);
    expect(verifyFrame(f).kind).toBe('ok');
  });

  it('reports truncated and padded frames as corrupted', () => {
    const f = buildFrame(header);
    expect(verifyFrame(f.subarray(0, 150))).toMatchObject({ kind: 'corrupted', stream: 1 });
    const padded = new Uint8Array(210);
    padded.set(f);
    expect(verifyFrame(padded)).toMatchObject({ kind: 'corrupted' });
  });

  it('calls other traffic foreign', () => {
    const arp = new Uint8Array(60);
    arp[12] = 0x08; arp[13] = 0x06;
    expect(verifyFrame(arp).kind).toBe('foreign');
    expect(verifyFrame(new Uint8Array(10)).kind).toBe('foreign');
  });
});

describe('StreamCounter', () => {
  const sendAll = (c: StreamCounter, n: number): void => { for (let i = 0; i < n; i++) c.noteSent(100); };

  it('counts a clean stream', () => {
    const c = new StreamCounter(0);
    sendAll(c, 5);
    for (let s = 0; s < 5; s++) expect(c.noteReceived(s, 100)).toBe('new');
    expect(c.complete).toBe(true);
    expect(c.report()).toMatchObject({ sent: 5, received: 5, lost: 0, reordered: 0, duplicated: 0, corrupted: 0 });
  });

  it('counts loss, reordering, duplicates and impossible sequence numbers', () => {
    const c = new StreamCounter(1, 'NIC1->NIC0');
    sendAll(c, 10);
    for (const s of [0, 2, 1, 3, 3, 5, 9, 4]) c.noteReceived(s, 100);
    expect(c.noteReceived(10, 100)).toBe('unknown');
    c.noteCorrupted();
    c.noteMisrouted();
    expect(c.report()).toMatchObject({
      name: 'NIC1->NIC0', sent: 10, received: 7, lost: 3, reordered: 2, duplicated: 1, corrupted: 2, misrouted: 1,
      lossPercent: 30,
    });
  });

  it('grows past its initial sequence table', () => {
    const c = new StreamCounter(0);
    sendAll(c, 5000);
    for (let s = 4999; s >= 0; s--) c.noteReceived(s, 100);
    expect(c.report()).toMatchObject({ received: 5000, lost: 0, reordered: 4999 });
  });
});

describe('sizeSequence()', () => {
  it('is deterministic and stays within bounds', () => {
    const a = sizeSequence('random', 7);
    const b = sizeSequence('random', 7);
    const sizes = Array.from({ length: 2000 }, () => a());
    expect(Array.from({ length: 2000 }, () => b())).toEqual(sizes);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(MIN_FRAME);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_FRAME);
    expect(new Set(sizes).size).toBeGreaterThan(500);
  });

  it('returns a fixed size', () => {
    expect(sizeSequence(128)()).toBe(128);
    expect(() => sizeSequence(20)).toThrow(RangeError);
  });
});

describe('parseTrafficArgs()', () => {
  it('derives both wires from the base port', () => {
    const { cli, rest } = parseTrafficArgs(['--base-port', '41000', '--rate', '500', '--size', '60', '--json', '--mode', 'x']);
    expect(cli.options.wires).toEqual(wiresFor(41000));
    expect(cli.options.rate).toBe(500);
    expect(cli.options.size).toBe(60);
    expect(cli.json).toBe(true);
    expect(rest).toEqual(['--mode', 'x']);
  });
});
