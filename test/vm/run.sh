#!/bin/sh
# Boots the testbed and runs a command in the guest: test/vm/run.sh [--mode modern|legacy|kernel] -- <command>
# A thin wrapper around test/vm/vm.ts (see there and test/vm/README.md for the options).
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../../node_modules/.bin/tsx" "$here/vm.ts" "$@"
