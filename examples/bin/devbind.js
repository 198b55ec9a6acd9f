#!/usr/bin/env node
// Package bin ixy-devbind: the compiled app (npm run build: dist/examples/devbind.js). Plain JavaScript, so
// that it runs after `npm i ixy.ts` with no TypeScript loader; a new bin is this file with another
// name plus a line in package.json's "bin".
await import("../../dist/examples/devbind.js");
