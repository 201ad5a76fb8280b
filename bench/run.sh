#!/usr/bin/env bash
# nsnet and its peers side by side, in one run on this machine (issue #6). As root:
#
#   bash bench/run.sh [N ...]            default N = 1 100 1000; results in bench/results/<time>/ (report.md,
#                                        results.json); BENCHMARKS.md quotes such a report
#   bash bench/run.sh profile            the diagnostics behind BENCHMARKS.md's explanations, same snapshot build:
#                                        profile-lib (where a library create/remove spends its time), profile-cli
#                                        (a CLI process, helper path and in-process: start-up, imports, CPU
#                                        profiles, strace -c), the kernel floor -> bench/results/<time>/profile.txt
#   env: BENCH_METHODS=lib,cli,nsnetcni,netavark,cni,ipscript,ipbatch   BENCH_TRAFFIC=0 (skip iperf3/connection rate)
#        BENCH_TRAFFIC_REPS=3   BENCH_SRC=worktree|HEAD (which src/ to measure, see below)
#
# Installs what it needs (Debian netavark, containernetworking-plugins, iperf3, nftables, iproute2, util-linux;
# `apt-get update` once if one is missing; npm ci if node_modules is missing), builds (tsc + bundle), then runs
# dist/bench/compare.js. Every namespace it makes is named bnh-/bnc-/bnu-<runid>-* (nsnet's own are
# nsnet-<hostid>-* under a state directory of ours in /tmp); they are deleted at the end, also on failure or
# Ctrl-C (trap below, which also kills, by PID, any process left inside them). The real host's interfaces,
# routes, nftables and sysctls are never touched; the run checks that its links and nftables tables are unchanged.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: run as root (network namespaces)" >&2; exit 1; }

need=()
[ -x /usr/lib/podman/netavark ] || need+=(netavark)
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/portmap ] && [ -x /usr/lib/cni/host-local ] || need+=(containernetworking-plugins)
command -v iperf3 >/dev/null || need+=(iperf3)
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
command -v iptables >/dev/null || need+=(iptables)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]}" >&2
  apt-get update -qq
  # iperf3 asks whether to start a daemon: no (noninteractive keeps the default, which is no).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
    echo "bench: WARNING: could not install ${need[*]}; the methods needing them will report why they failed" >&2
fi
# node_modules, with esbuild when the project bundles its CLI (scripts/bundle.mjs).
if [ ! -d node_modules ] || { [ -f scripts/bundle.mjs ] && [ ! -d node_modules/esbuild ]; }; then npm ci --no-audit --no-fund >&2; fi

pids_in_ns() { # PIDs whose netns is /run/netns/$1
  local ino; ino=$(stat -Lc %i "/run/netns/$1" 2>/dev/null) || return 0
  for p in /proc/[0-9]*; do
    [ "$(stat -Lc %i "$p/ns/net" 2>/dev/null)" = "$ino" ] && echo "${p#/proc/}"
  done
  return 0
}
# This run's id: every namespace it makes is bnh-/bnc-/bnu-$runid-*, every state directory is under $TMPDIR.
runid=$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')
export BENCH_RUNID=$runid
export TMPDIR=/tmp/bn-run-$runid
mkdir -p "$TMPDIR"
del_ns() { # kill (by PID) what runs inside our netns $1, then delete it
  for p in $(pids_in_ns "$1"); do kill -KILL "$p" 2>/dev/null || true; done
  ip netns del "$1" 2>/dev/null || true
}
cleanup() {
  local rc=$? n d id
  trap - EXIT INT TERM
  if [ -n "${child:-}" ]; then kill -TERM "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  for n in $(ls /run/netns 2>/dev/null | grep -E "^bn[hcu]-$runid-" || true); do del_ns "$n"; done
  # nsnet's own container netns are nsnet-<hostid>-NAME, hostid = sha256(state directory)[0:6]; our state
  # directories are $TMPDIR/bn-*/nsnet.
  for d in "$TMPDIR"/bn-*; do
    [ -d "$d/nsnet" ] || continue
    id=$(printf %s "$(readlink -f "$d")/nsnet" | sha256sum | cut -c1-6)
    for n in $(ls /run/netns 2>/dev/null | grep "^nsnet-$id-" || true); do del_ns "$n"; done
  done
  rm -rf "$TMPDIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private snapshot build: dist/ may be rebuilt, and src/ edited, by other work while we measure. Which sources:
#   BENCH_SRC=worktree (default)  src/, scripts/, bin/, test/ as they are in the work tree now (uncommitted changes included)
#   BENCH_SRC=HEAD                those of the last commit (reproducible: the report names the commit)
# bench/ always comes from the work tree. The build is the project's own (`npm run build`: tsc, then
# scripts/bundle.mjs when it exists, which makes the CLI's start path dist/nsnet-start.cjs), in $TMPDIR/build.
build=$TMPDIR/build
mkdir -p "$build/bench"
ln -s "$PWD/node_modules" "$build/node_modules"
BENCH_GIT="$(git log -1 --format='%h %s' 2>/dev/null || echo unknown)"
if [ "${BENCH_SRC:-worktree}" = HEAD ]; then
  git archive HEAD src scripts bin test tsconfig.json package.json | tar -x -C "$build"
  BENCH_GIT="src/ of commit $BENCH_GIT"
else
  cp -r src scripts bin test tsconfig.json package.json "$build/"
  [ -n "$(git status --porcelain -- src scripts bin 2>/dev/null)" ] && BENCH_GIT="work tree at $(date -u +%H:%M:%SZ) (last commit: $BENCH_GIT; uncommitted changes)"
fi
export BENCH_GIT
cp bench/*.ts bench/*.sh "$build/bench/"
# Work in progress under src/ may not type-check at this moment: tsc still emits, and the benchmark needs only the
# emitted files.
npx tsc -p "$build" >&2 || echo "bench: WARNING: tsc reported type errors (files emitted anyway)" >&2
if [ -f "$build/scripts/bundle.mjs" ]; then
  (cd "$build" && node scripts/bundle.mjs) >&2 || echo "bench: WARNING: scripts/bundle.mjs failed" >&2
fi
for f in compare attach traffic netlink-attach profile-lib profile-cli; do
  [ -f "$build/dist/bench/$f.js" ] || { echo "bench: $f.js was not built" >&2; exit 1; }
done
[ -f "$build/dist/src/index.js" ] || { echo "bench: dist/src/index.js was not built" >&2; exit 1; }

methods=${BENCH_METHODS:-lib,cli,nsnetcni,netavark,cni,ipscript,ipbatch}
extra=()
[ "${BENCH_TRAFFIC:-1}" = 0 ] && extra+=(--no-traffic)
out="$PWD/bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
export BENCH_COMMAND="bash bench/run.sh $*"
if [ "${1:-}" = profile ]; then
  mkdir -p "$out"
  {
    echo "# bash bench/run.sh profile — $BENCH_GIT — $(nproc) CPUs, kernel $(uname -r), node $(node --version), load $(cut -d' ' -f1-3 /proc/loadavg)"
    for step in "profile-lib.js 1000" "profile-cli.js 20" "netlink-attach.js --full 300"; do
      echo; echo "## node dist/bench/$step"
      # shellcheck disable=SC2086
      node "$build/dist/bench/"$step || echo "(failed: exit $?)"
      sleep 20 # the kernel's clean-up of the namespaces just removed would otherwise slow the next step down
    done
  } 2>&1 | tee "$out/profile.txt" &
  child=$!
  wait "$child"
  child=
  echo "bench: profile in $out/profile.txt" >&2
  exit 0
fi
node "$build/dist/bench/compare.js" --out "$out" --methods "$methods" "${extra[@]}" "$@" &
child=$!
rc=0
wait "$child" || rc=$?
child=
echo "bench: report in $out/report.md" >&2
exit $rc
