/**
 * The real-hardware suite (nic-pair.hw-test.ts) on two 82599 models wired to each other, in
 * `npm test`: so that `npm run test:hw` is known to work before it meets a real pair of ports.
 */
process.env.IXY_HW_PORTS = "sim";
await import("./nic-pair.hw-test.ts");
