#!/usr/bin/env bash
# The second demo: a 3-member etcd cluster from a topology file, partitioned and healed (scripts/demo-etcd.ts),
# inside a throwaway host netns, everything removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/scripts/demo-etcd.js
