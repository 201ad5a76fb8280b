// This host's membership of a cluster (issue #17): written by `nsnet cluster join`, removed by `leave`, read by the
// overlay driver's ports (Host.ports.cluster) and by the cluster agent. One JSON file in the state directory, 0600,
// never followed through a symlink.
import fs from 'node:fs';
import path from 'node:path';
import { readFileSafe } from '../dns/files.js';
import { writeFileNoFollow } from './statedir.js';

export interface ClusterConfig {
  /** etcd endpoints as given (etcd://host:port,...). */
  store: string;
  /** This host's underlay address: other hosts' VXLAN tunnels end here. */
  advertise: string;
  /** This host's name in the cluster (one key segment). */
  hostId: string;
  /** Lease TTL, seconds. */
  ttl: number;
  /** When it joined (ISO-8601). */
  joined: string;
}

export function clusterFile(root: string): string {
  return path.join(root, 'cluster.json');
}

/** The membership, or null when this host is in no cluster. A damaged file is an error naming it. */
export function readClusterConfig(root: string): ClusterConfig | null {
  let text: string;
  try {
    text = readFileSafe(clusterFile(root));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  let v: Partial<ClusterConfig>;
  try {
    v = JSON.parse(text) as Partial<ClusterConfig>;
  } catch {
    throw new Error(`${clusterFile(root)}: not JSON (remove it with nsnet cluster leave --force, then join again)`);
  }
  if (typeof v.store !== 'string' || typeof v.advertise !== 'string' || typeof v.hostId !== 'string' || typeof v.ttl !== 'number') {
    throw new Error(`${clusterFile(root)}: missing store, advertise, hostId or ttl (remove it with nsnet cluster leave --force, then join again)`);
  }
  return { store: v.store, advertise: v.advertise, hostId: v.hostId, ttl: v.ttl, joined: v.joined ?? '' };
}

export function writeClusterConfig(root: string, c: ClusterConfig): void {
  const tmp = clusterFile(root) + '.tmp';
  writeFileNoFollow(tmp, JSON.stringify(c, null, 2) + '\n');
  fs.renameSync(tmp, clusterFile(root));
}

export function removeClusterConfig(root: string): void {
  fs.rmSync(clusterFile(root), { force: true });
}
