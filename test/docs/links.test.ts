import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { diagrams, RING, ringOwner, ringSvg } from "../../scripts/diagrams.ts";
import {
  checkPage,
  checkRepository,
  declaresSymbol,
  extractLinks,
  filesReferringOutside,
  outsideReferences,
  repositoryRoot,
} from "../../scripts/check-doc-links.ts";

const FAKE_SOURCE = `
export function openDevice(address: string): void {}
export class Mempool {
  static allocate(n: number): Mempool { return new Mempool(); }
  get size(): number { return 0; }
  #free = 0;
}
export const MAX_POOLS = 64;
export interface DeviceStats { rxPackets: number }
export type BufferNumber = number;
`;

describe("doc link checker (scripts/check-doc-links.ts)", () => {
  const files = new Map([
    ["src/open-device.ts", FAKE_SOURCE],
    ["docs/other.md", "# Other\n"],
  ]);
  const exists = (p: string) => files.has(p) || p === "src";
  const read = (p: string) => files.get(p) ?? null;

  it("finds symbols declared in a TypeScript source", () => {
    for (const s of ["openDevice", "Mempool", "allocate", "size", "#free", "MAX_POOLS", "DeviceStats", "BufferNumber"]) {
      expect(declaresSymbol(FAKE_SOURCE, s), s).toBe(true);
    }
    for (const s of ["closeDevice", "Mem", "rxPackets2", "a b"]) expect(declaresSymbol(FAKE_SOURCE, s), s).toBe(false);
  });

  it("skips absolute URLs, same-page anchors and code", () => {
    const links = extractLinks(
      "[a](https://example.org/x.md) [b](#here) `[c](nope.md)`\n```\n[d](nope.md)\n```\n[e](other.md#Other)",
    );
    expect(links.map((l) => [l.target, l.fragment, l.line])).toEqual([["other.md", "Other", 5]]);
  });

  it("accepts good links and reports a broken file, a broken symbol and a link out of the repository", () => {
    const page = [
      "Good: [openDevice](../src/open-device.ts#openDevice), [allocate](../src/open-device.ts#allocate),",
      "[other](other.md#anything), [src](../src), [plain](../src/open-device.ts).",
      "Broken file: [gone](../src/gone.ts#openDevice).",
      "Broken symbol: [closeDevice](../src/open-device.ts#closeDevice).",
      "Outside: [x](../../elsewhere/notes.md).",
    ].join("\n");
    const problems = checkPage("docs/tour.md", page, exists, read);
    expect(problems.map((p) => [p.line, p.link])).toEqual([
      [3, "../src/gone.ts#openDevice"],
      [4, "../src/open-device.ts#closeDevice"],
      [5, "../../elsewhere/notes.md"],
    ]);
    expect(problems[0]!.problem).toMatch(/no such file: src\/gone\.ts/);
    expect(problems[1]!.problem).toMatch(/declares no symbol 'closeDevice'/);
    expect(problems[2]!.problem).toMatch(/outside the repository/);
  });

  it("resolves README links from the repository root", () => {
    expect(checkPage("README.md", "[o](src/open-device.ts#openDevice)", exists, read)).toEqual([]);
    expect(checkPage("README.md", "[o](../src/open-device.ts)", exists, read)).toHaveLength(1);
  });
});

describe("the repository's documentation", () => {
  it("has no broken relative links or code links in README.md and docs/*.md", () => {
    const problems = checkRepository(repositoryRoot).map((p) => `${p.page}:${p.line}: ${p.link}: ${p.problem}`);
    expect(problems).toEqual([]);
  });

  it("has no tracked file that refers to documents outside the repository", () => {
    expect(outsideReferences()).toHaveLength(4);
    expect(filesReferringOutside(repositoryRoot)).toEqual([]);
  });
});

describe("the diagrams (scripts/diagrams.ts, npm run diagrams)", () => {
  it("docs/img/*.svg on disk are what the script generates now", () => {
    for (const [path, content] of Object.entries(diagrams())) {
      const onDisk = existsSync(join(repositoryRoot, path)) ? readFileSync(join(repositoryRoot, path), "utf8") : null;
      expect(onDisk, `${path} is stale: run npm run diagrams`).toBe(content);
    }
  });

  it("every diagram is well-formed XML: no attribute twice in a tag, every element closed", () => {
    for (const [path, content] of Object.entries(diagrams())) {
      const open: string[] = [];
      for (const m of content.matchAll(/<(\/?)([a-z]+)([^>]*?)(\/?)>/g)) {
        const [, closing, name, attributes, selfClosing] = m;
        const names = [...attributes!.matchAll(/([a-z:-]+)=/g)].map((a) => a[1]!);
        expect(new Set(names).size, `${path}: <${name}${attributes}>`).toBe(names.length);
        if (closing) expect(open.pop(), `${path}: </${name}>`).toBe(name);
        else if (!selfClosing) open.push(name!);
      }
      expect(open, path).toEqual([]);
    }
  });

  it("the ring diagram's owners follow the driver's rule", () => {
    // After rxBatch: next = 3, RDT = 2, RDH = 7.
    expect(ringOwner(RING.next - 1)).toBe("driver-held");
    for (let i = RING.next; i < RING.head; i++) expect(ringOwner(i)).toBe("driver-done");
    for (let i = RING.head; i < RING.size; i++) expect(ringOwner(i)).toBe("device");
    expect(ringOwner(0)).toBe("device");
    expect(ringSvg()).toContain("RDH (head)");
  });
});
