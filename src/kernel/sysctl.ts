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

/** Turns IPv6 on for one interface of the netns given by fd (an interface on a network with IPv6): router
 *  advertisements ignored first (accept_ra=0, so none is accepted in between), then disable_ipv6=0. A container
 *  netns has IPv6 disabled for every interface by default (conf/default), so its other interfaces stay without it. */
export function enableIPv6On(ifname: string, netnsFd?: number): void {
  const dev = ifname.replace(/\./g, '/');
  // Written without reading first (a fresh interface has the netns defaults: accept_ra 1, disable_ipv6 1): two
  // /proc/sys writes on the attach path instead of four accesses.
  const run = () => {
    fs.writeFileSync(path(`net.ipv6.conf.${dev}.accept_ra`), '0');
    fs.writeFileSync(path(`net.ipv6.conf.${dev}.disable_ipv6`), '0');
  };
  if (netnsFd === undefined) run();
  else inNetns(netnsFd, run);
}

/** Whether this kernel has IPv6 at all (not booted with ipv6.disable=1), in the current netns. */
export function ipv6Available(): boolean {
  return fs.existsSync('/proc/sys/net/ipv6/conf/all');
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
