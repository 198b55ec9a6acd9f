/**
 * Compiles TypeScript entry points to plain JavaScript for the guest, on the host, before boot.
 *
 * Under TCG `tsx` needs ~4-5 s just to start in the guest (plain `node` on a .js file: ~0.3 s), so
 * tests run bundles instead: each entry (with its relative imports) becomes one ES module in
 * .testbed/dist/<same path>.js; packages (koffi) stay external and resolve from the project's
 * node_modules, which the guest sees at the same path. The bundler is esbuild, which tsx brings
 * along (it is in node_modules whenever tsx is).
 *
 *   const [fwd] = await compileForGuest(['examples/fwd.ts']);   // absolute .testbed/dist/examples/fwd.js
 *   await runVm({ mode: 'modern', command: `node --enable-source-maps ${fwd} $IXY_NIC0 $IXY_NIC1` });
 *
 * CLI: tsx test/vm/compile.ts examples/fwd.ts ...   (prints the output paths)
 */
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PROJECT_ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
export const DIST_DIR = join(PROJECT_ROOT, '.testbed', 'dist');

/** Where compileForGuest puts the bundle of `entry` (a path relative to the project or absolute). */
export function guestJsPath(entry: string): string {
  const abs = isAbsolute(entry) ? entry : join(PROJECT_ROOT, entry);
  const rel = relative(PROJECT_ROOT, abs);
  if (rel.startsWith('..')) throw new RangeError(`${entry} is outside the project`);
  return join(DIST_DIR, rel.replace(/\.[cm]?ts$/, '.js'));
}

/** Bundles each entry to .testbed/dist (with a source map); returns the absolute .js paths. */
export async function compileForGuest(entries: readonly string[]): Promise<string[]> {
  const esbuild = await import('esbuild');
  const outputs: string[] = [];
  for (const entry of entries) {
    const outfile = guestJsPath(entry);
    await esbuild.build({
      entryPoints: [isAbsolute(entry) ? entry : join(PROJECT_ROOT, entry)],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      sourcemap: true,
      logLevel: 'error',
    });
    outputs.push(outfile);
  }
  return outputs;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const entries = process.argv.slice(2);
  if (entries.length === 0) {
    process.stderr.write('usage: tsx test/vm/compile.ts <entry.ts>...\n');
    process.exitCode = 2;
  } else {
    for (const out of await compileForGuest(entries)) process.stdout.write(out + '\n');
  }
}
