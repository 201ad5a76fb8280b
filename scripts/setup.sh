#!/usr/bin/env bash
# Installs everything nsnet and its tests need on a fresh Debian machine (as root), then builds.
# Debian: nftables (libnftables.so.1, used in-process), iproute2 + iputils-ping + python3 (tests and demo only),
# util-linux (unshare/nsenter/mount for starting container processes), gcc + libc6-dev (the CLI's fast client,
# src/cli/client.c), chromium (the graph page opened in a real browser by the tests), podman + runc + busybox-static +
# curl (the CNI end-to-end test: test/integration/cni-podman.test.ts), etcd-server + etcd-client (a 3-member cluster
# partitioned in test/integration/etcd-partition.test.ts), iperf3 (the link-impairment test measures --rate with it:
# test/integration/netem.test.ts). npm: the pinned lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in nftables libnftables1 iproute2 iputils-ping util-linux mount python3 procps gcc libc6-dev chromium podman runc busybox-static curl etcd-server etcd-client iperf3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  # No daemon of these packages is started by their installation (etcd-server's would listen on the real host):
  # the tests start their own, inside throwaway namespaces. policy-rc.d is Debian's switch for that.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  rc=0
  apt-get install -y --no-install-recommends "${need[@]}" || rc=$?
  if [ "$own_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  if [ "$rc" != 0 ]; then exit "$rc"; fi
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
