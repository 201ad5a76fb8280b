// A copy of each network's record in <root>/networks/<id>.json, written when the network is made and removed with
// it: what the bridge's mark (src/engine/marks.ts) cannot hold (labels, options, the IP range, the creation
// time) for the store's rebuild from the kernel (src/engine/rebuild.ts). The store stays the truth; a copy is
// only read for a network whose bridge still carries that id.
import fs from 'node:fs';
import path from 'node:path';
import type { NetworkRecord } from '../types.js';
import { isSafeName } from '../util/validate.js';
import type { Host } from './host.js';
import { ensureStateSubdir, writeFileNoFollow } from './statedir.js';

function copyFile(h: Host, id: string): string | null {
  return isSafeName(id) ? path.join(h.root, 'networks', `${id}.json`) : null;
}

export function writeNetworkCopy(h: Host, n: NetworkRecord): void {
  ensureStateSubdir(h.root, 'networks', 0o700);
  writeFileNoFollow(copyFile(h, n.id)!, JSON.stringify(n));
}

export function removeNetworkCopy(h: Host, id: string): void {
  const f = copyFile(h, id);
  if (f) fs.rmSync(f, { force: true });
}

/** The copy of network `id`, or null (none, unreadable, or not that network's). */
export function readNetworkCopy(h: Host, id: string): NetworkRecord | null {
  const f = copyFile(h, id);
  if (!f) return null;
  try {
    const st = fs.lstatSync(f);
    if (!st.isFile()) return null;
    const n = JSON.parse(fs.readFileSync(f, 'utf8')) as NetworkRecord;
    return n && n.id === id && typeof n.name === 'string' && typeof n.subnet === 'string' ? n : null;
  } catch {
    return null;
  }
}

// A stopped container's released attachments (the store's saved_endpoints) in <containerDir>/saved.json, for the
// same rebuild: a stopped container's namespace holds no interface to read them from. Written when a sandbox is
// released, removed when start gives the endpoints back; best effort (only a rebuild reads it).
function savedFile(h: Host, id: string): string {
  return path.join(h.containerDir(id), 'saved.json');
}

export function writeSavedCopy(h: Host, id: string, saved: unknown[]): void {
  try {
    if (saved.length) writeFileNoFollow(savedFile(h, id), JSON.stringify(saved));
    else fs.rmSync(savedFile(h, id), { force: true });
  } catch { /* only the rebuild would miss it, and says so */ }
}

export function readSavedCopy(h: Host, id: string): Array<Record<string, unknown>> | null {
  try {
    const f = savedFile(h, id);
    if (!fs.lstatSync(f).isFile()) return null;
    const v = JSON.parse(fs.readFileSync(f, 'utf8')) as unknown;
    return Array.isArray(v) && v.every((e) => e && typeof e === 'object' && typeof (e as { networkId?: unknown }).networkId === 'string' && typeof (e as { ifname?: unknown }).ifname === 'string')
      ? (v as Array<Record<string, unknown>>) : null;
  } catch {
    return null;
  }
}
