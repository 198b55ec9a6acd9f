/**
 * The link convention of README.md and docs/*.md, and its checker (test/docs/links.test.ts runs
 * it in `npm test`; `npx tsx scripts/check-doc-links.ts` prints the problems).
 *
 * A code link is an ordinary markdown link to a file of the repository, relative to the page,
 * with the symbol it means as the URL fragment:
 *
 *     [openDevice](../src/open-device.ts#openDevice)      from docs/*.md
 *     [openDevice](src/open-device.ts#openDevice)         from README.md
 *
 * GitHub renders the file; the fragment tells the reader which declaration to look for. Checked:
 *   - every relative link resolves to a file or directory that exists;
 *   - a fragment on a .ts target names a symbol declared in that file (function, class, const,
 *     let, var, interface, type, enum, or a method / accessor of a class);
 *   - a fragment on any other target (a .md heading, a line number) is not checked.
 * Links inside fenced code blocks and inline code are not links and are skipped, as are
 * absolute URLs (http:, https:, mailto:) and same-page fragments (#...).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface DocLink {
  readonly text: string;
  readonly target: string; // the path part, relative to the page
  readonly fragment: string | null;
  readonly line: number;
}

export interface LinkProblem {
  readonly page: string;
  readonly line: number;
  readonly link: string;
  readonly problem: string;
}

/** Removes fenced code blocks and inline code, keeping the line count. */
function stripCode(markdown: string): string {
  const lines = markdown.split("\n");
  let fenced = false;
  const out: string[] = [];
  for (const line of lines) {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      out.push("");
      continue;
    }
    out.push(fenced ? "" : line.replace(/`[^`]*`/g, "``"));
  }
  return out.join("\n");
}

/** The relative links of a markdown page (absolute URLs and same-page fragments left out). */
export function extractLinks(markdown: string): DocLink[] {
  const links: DocLink[] = [];
  const lines = stripCode(markdown).split("\n");
  const pattern = /!?\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;
  lines.forEach((line, i) => {
    for (const m of line.matchAll(pattern)) {
      const url = m[2]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(url) || url.startsWith("#")) continue;
      const hash = url.indexOf("#");
      links.push({
        text: m[1]!,
        target: decodeURIComponent(hash < 0 ? url : url.slice(0, hash)),
        fragment: hash < 0 ? null : decodeURIComponent(url.slice(hash + 1)),
        line: i + 1,
      });
    }
  });
  return links;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Whether `source` (TypeScript) declares `symbol`: a top-level or member declaration. */
export function declaresSymbol(source: string, symbol: string): boolean {
  if (!/^#?[A-Za-z_$][\w$]*$/.test(symbol)) return false;
  const name = escapeRegExp(symbol);
  const declaration = new RegExp(
    `\\b(?:function\\*?|class|const|let|var|interface|type|enum|namespace)\\s+${name}(?![\\w$])`,
  );
  if (declaration.test(source)) return true;
  // A method, accessor or field of a class or interface: at the start of a line, after modifiers.
  const member = new RegExp(
    `^\\s*(?:(?:export|public|private|protected|static|async|readonly|override|abstract|declare|get|set)\\s+)*\\*?${name}\\s*(?:<[^>\\n]*>)?\\s*[(:=?!]`,
    "m",
  );
  return member.test(source);
}

/** Reads a file relative to the repository root, or null if there is none. */
export type ReadFile = (repoPath: string) => string | null;
/** Whether a repository path exists (file or directory). */
export type Exists = (repoPath: string) => boolean;

/**
 * The problems of one page. `page` is its repository path (e.g. "docs/tour.md"), `markdown` its
 * text; `exists` and `read` look at the repository (the test passes fakes for the unit test).
 */
export function checkPage(page: string, markdown: string, exists: Exists, read: ReadFile): LinkProblem[] {
  const problems: LinkProblem[] = [];
  for (const link of extractLinks(markdown)) {
    const shown = link.target + (link.fragment === null ? "" : `#${link.fragment}`);
    const path = link.target === "" ? page : join(dirname(page), link.target);
    if (path.startsWith("..") || path.startsWith("/")) {
      problems.push({ page, line: link.line, link: shown, problem: "points outside the repository" });
      continue;
    }
    if (!exists(path)) {
      problems.push({ page, line: link.line, link: shown, problem: `no such file: ${path}` });
      continue;
    }
    if (link.fragment !== null && link.fragment !== "" && path.endsWith(".ts")) {
      const source = read(path);
      if (source === null || !declaresSymbol(source, link.fragment)) {
        problems.push({ page, line: link.line, link: shown, problem: `${path} declares no symbol '${link.fragment}'` });
      }
    }
  }
  return problems;
}

/** The pages the convention covers: README.md and docs/*.md. */
export function docPages(root: string): string[] {
  const pages = ["README.md"];
  const docs = join(root, "docs");
  if (existsSync(docs)) {
    for (const name of readdirSync(docs).sort()) if (name.endsWith(".md")) pages.push(`docs/${name}`);
  }
  return pages.filter((p) => existsSync(join(root, p)));
}

/** Checks every page of the repository at `root`. */
export function checkRepository(root: string): LinkProblem[] {
  const exists: Exists = (p) => existsSync(join(root, p));
  const read: ReadFile = (p) => {
    try {
      return readFileSync(join(root, p), "utf8");
    } catch {
      return null;
    }
  };
  return docPages(root).flatMap((page) => checkPage(page, readFileSync(join(root, page), "utf8"), exists, read));
}

/**
 * The strings no tracked file may contain: references to documents that live outside this
 * repository. Built from pieces so that this file does not contain them itself.
 */
export function outsideReferences(): string[] {
  const md = "." + "md";
  return [".." + "/shared", "DES" + "IGN" + md, "TEST" + "BED" + md, "STY" + "LE" + md];
}

/** Tracked files (git ls-files) that contain one of `outsideReferences()`, with the string. */
export function filesReferringOutside(root: string): { file: string; string: string }[] {
  const files = execFileSync("git", ["ls-files", "-z"], { cwd: root, encoding: "utf8" }).split("\0").filter((f) => f !== "");
  const wanted = outsideReferences();
  const found: { file: string; string: string }[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(join(root, file), "latin1");
    } catch {
      continue; // a tracked file deleted in the work tree
    }
    for (const s of wanted) if (text.includes(s)) found.push({ file, string: s });
  }
  return found;
}

export const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const problems = checkRepository(repositoryRoot);
  for (const p of problems) console.log(`${p.page}:${p.line}: ${p.link}: ${p.problem}`);
  for (const f of filesReferringOutside(repositoryRoot)) console.log(`${f.file}: refers outside the repository (${f.string})`);
  console.log(`${problems.length} broken link(s)`);
}
