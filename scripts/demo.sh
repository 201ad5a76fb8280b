#!/usr/bin/env bash
# The main job: the seed document's scenario, run for real inside a throwaway "host" network namespace
# (so the machine's own network is never touched), then everything removed again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/scripts/demo.js
