#!/bin/sh
# Kept for old instructions: binding is ixy-devbind's job now (examples/devbind.ts), which refuses
# an interface the machine uses (routes, addresses, the default route) unless --force, and can
# give the device back (--restore). Installed: `sudo npx ixy-devbind --bind 0000:01:00.0`.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
echo "$0 is deprecated: use ixy-devbind --bind (npx ixy-devbind --help)" >&2
if [ -x "$here/node_modules/.bin/tsx" ]; then
  exec "$here/node_modules/.bin/tsx" "$here/examples/devbind.ts" --bind "$@"
fi
exec npx --no-install tsx "$here/examples/devbind.ts" --bind "$@"
