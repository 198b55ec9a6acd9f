// node --import test/vm/guest/as-user.mjs <program>: runs <program> as uid/gid IXY_UID (default
// 1000) instead of root, as a service started as an unprivileged user would run. Loaded before
// the program, so that nothing of it runs with root's rights. Plain JavaScript: no build step.
const id = Number(process.env.IXY_UID ?? 1000);
process.setgroups([]);
process.setgid(id);
process.setuid(id);
if (process.getuid() !== id || process.geteuid() !== id) throw new Error(`as-user: still uid ${process.geteuid()}`);
