#!/usr/bin/env bash
# The third demo: three simulated hosts and a 3-member etcd cluster on one machine, an overlay network across the
# hosts (scripts/demo-overlay.ts); everything removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/scripts/demo-overlay.js
