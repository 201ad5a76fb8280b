// Per-netns sysctls under /proc/sys/net. Reads and writes are synchronous, so inside inNetns() (or a
// createNetns() callback) they land in that netns.
import fs from 'node:fs';
import { inNetns } from './netns.js';

function path(key: string): string {
  if (!/^net\.[A-Za-z0-9_.\-]+$/.test(key)) throw new Error(`refusing sysctl outside net.*: ${key}`);
  // Interface names may contain dots; callers pass them with '/' already in place of the separator.
  return '/proc/sys/' + key.replace(/\./g, '/');
}

/** Writes a net.* sysctl (only if it differs) in the current netns or the one given by fd. */
export function writeSysctl(key: string, value: string, netnsFd?: number): void {
  const write = () => {
    const p = path(key);
    if (fs.readFileSync(p, 'utf8').trim() !== value) fs.writeFileSync(p, value);
  };
  if (netnsFd === undefined) write();
  else inNetns(netnsFd, write);
}

/** Writes a net.* sysctl in the current netns without reading it first: one lookup, for a fresh netns where
 *  every /proc/sys lookup costs (docs/kernel-notes.md §2). */
export function setSysctl(key: string, value: string): void {
  fs.writeFileSync(path(key), value);
}

/** Reads a net.* sysctl (trimmed) in the current netns. */
export function readSysctl(key: string): string {
  return fs.readFileSync(path(key), 'utf8').trim();
}
