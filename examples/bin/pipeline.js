#!/usr/bin/env node
// Package bin: runs examples/pipeline.ts through tsx (installed with the repository's dev dependencies).
import { register } from "tsx/esm/api";

register();
await import("../pipeline.ts");
