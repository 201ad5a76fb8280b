// Where the resolver process gets its data. Today a JSON file written by the engine (src/engine/dnsctl.ts);
// later perhaps the SQLite store directly: everything goes through loadView().
import type { DnsView } from './answer.js';
import { readFileSafe } from './files.js';

function fail(file: string, what: string): never {
  throw new Error(`${file}: ${what}`);
}

/** Checks the shape of a parsed view; returns it typed, or throws naming the first problem. */
export function validateView(v: unknown, file = 'view'): DnsView {
  if (!v || typeof v !== 'object' || Array.isArray(v)) fail(file, 'not a JSON object');
  const o = v as Record<string, unknown>;
  if (o.generation !== undefined && typeof o.generation !== 'number') fail(file, '"generation" is not a number');
  if (!Array.isArray(o.networks)) fail(file, '"networks" is not an array');
  if (!Array.isArray(o.entries)) fail(file, '"entries" is not an array');
  if (!Array.isArray(o.upstreams)) fail(file, '"upstreams" is not an array');
  for (const n of o.networks as unknown[]) {
    const r = n as Record<string, unknown>;
    if (!r || typeof r !== 'object' || ['id', 'name', 'gateway', 'subnet'].some((k) => typeof r[k] !== 'string')) {
      fail(file, `bad network ${JSON.stringify(n)}`);
    }
  }
  for (const e of o.entries as unknown[]) {
    const r = e as Record<string, unknown>;
    if (!r || typeof r !== 'object' || typeof r.networkId !== 'string' || typeof r.ip !== 'string' ||
      typeof r.containerId !== 'string' || !Array.isArray(r.names) || r.names.some((x) => typeof x !== 'string')) {
      fail(file, `bad entry ${JSON.stringify(e)}`);
    }
  }
  if ((o.upstreams as unknown[]).some((x) => typeof x !== 'string')) fail(file, '"upstreams" holds a non-string');
  if (o.resolvConf !== undefined && typeof o.resolvConf !== 'string') fail(file, '"resolvConf" is not a string');
  if (o.overrides !== undefined) {
    if (!o.overrides || typeof o.overrides !== 'object' || Array.isArray(o.overrides)) fail(file, '"overrides" is not an object');
    for (const list of Object.values(o.overrides as Record<string, unknown>)) {
      if (!Array.isArray(list) || list.some((x) => typeof x !== 'string')) fail(file, '"overrides" holds a non-list');
    }
  }
  return o as unknown as DnsView;
}

/** Reads and checks the view at `source` (a JSON file path). */
export async function loadView(source: string): Promise<DnsView> {
  const text = readFileSafe(source); // not through a symlink (files.ts)
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    fail(source, `invalid JSON (${(e as Error).message})`);
  }
  return validateView(v, source);
}
