/**
 * Noticing that the process that started an app is gone (killed with SIGKILL, say), so that the
 * app stops instead of spinning a core for nobody. Linux reparents an orphan without telling it,
 * and PR_SET_PDEATHSIG would only cover the direct parent, which under `npx ixy-fwd` is npm's
 * `sh -c` (and under `npx tsx`, tsx's node and then that sh): those wrappers survive npm's death
 * and keep waiting for the app. So the watch covers the parent and, through such wrappers (sh,
 * dash, node), the ancestors up to the first other process (npm, a login shell, a test runner),
 * at most MAX_DEPTH of them, and checks once a second that each still has the parent it had.
 */
import { readFileSync } from "node:fs";

const WRAPPERS = new Set(["sh", "dash", "node"]);
const MAX_DEPTH = 4;

/** The parent pid of `pid` from /proc (null: gone, or no /proc). */
function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 4, after "pid (comm) state": comm may hold spaces and parentheses, so from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[1]);
  } catch {
    return null;
  }
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** [child, parent] links to check: process `child` must keep `parent` as its parent. */
function ancestry(): [number, number][] {
  const links: [number, number][] = [];
  let child = process.pid;
  let parent = process.ppid;
  while (parent > 1 && links.length < MAX_DEPTH) {
    links.push([child, parent]);
    if (!WRAPPERS.has(commOf(parent))) break;
    const next = parentOf(parent);
    if (next === null) break;
    child = parent;
    parent = next;
  }
  return links;
}

/**
 * Calls `gone` once, within about a second, when the parent (or a wrapper ancestor, see above)
 * exits. The timer is unref'd: it never keeps the process alive.
 */
export function watchParent(gone: () => void): void {
  const links = ancestry();
  if (links.length === 0) return; // started by init, or orphaned already: nothing to watch
  const timer = setInterval(() => {
    for (const [child, parent] of links) {
      const now = child === process.pid ? process.ppid : parentOf(child);
      if (now !== parent) {
        clearInterval(timer);
        gone();
        return;
      }
    }
  }, 1000);
  timer.unref();
}
