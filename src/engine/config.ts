// A container's settings that are not network state (hostname, environment, labels, ...).
import fs from 'node:fs';
import path from 'node:path';
import type { ContainerRecord, NetworkMode, PortMapping } from '../types.js';
import type { Host } from './host.js';
import { UserError, showValue } from '../util/errors.js';
import { isIP } from '../util/addr.js';
import { validateLabel } from '../util/validate.js';

const bad = (m: string): never => { throw new UserError(m, 'invalid'); };

/** An RFC 1123 host name of at most 64 bytes (the kernel's UTS limit). */
export function validateHostname(name: string, what = 'hostname'): void {
  if (name.length > 64) bad(`invalid ${what} ${showValue(name)}: longer than 64 characters`);
  const labels = name.split('.');
  if (!labels.every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l))) {
    bad(`invalid ${what} ${showValue(name)}: letters, digits and '-' in dot-separated labels`);
  }
}

export function validateMac(mac: string): void {
  if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(mac)) bad(`invalid MAC address ${showValue(mac)}`);
  if (parseInt(mac.slice(0, 2), 16) & 1) bad(`invalid MAC address ${showValue(mac)}: a multicast address`);
  if (/^(00:){5}00$/.test(mac)) bad(`invalid MAC address ${showValue(mac)}: all zero`);
}

/** Docker's --expose PORT[-END][/PROTO]: returns ranges. */
function parseExpose(spec: string): { lo: number; hi: number; proto: string } {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp))?$/.exec(spec);
  const lo = Number(m?.[1]);
  const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
  if (!m || lo < 1 || hi > 65535 || hi < lo) bad(`invalid --expose ${showValue(spec)}: expected PORT[-END][/tcp|udp]`);
  return { lo, hi, proto: m![3] ?? 'tcp' };
}

/** The -p specs that -P adds: one ephemeral-host-port spec per exposed port not already published by -p. */
export function exposedSpecs(exposed: string[], publish: string[]): string[] {
  const published = new Set<string>();
  for (const p of publish) {
    const m = /(\d+)(?:-(\d+))?(?:\/(tcp|udp))?$/.exec(p);
    if (!m) continue;
    for (let x = Number(m[1]); x <= Number(m[2] ?? m[1]); x++) published.add(`${x}/${m[3] ?? 'tcp'}`);
  }
  const out: string[] = [];
  for (const e of exposed) {
    const r = parseExpose(e);
    for (let x = r.lo; x <= r.hi; x++) if (!published.has(`${x}/${r.proto}`)) { published.add(`${x}/${r.proto}`); out.push(`${x}/${r.proto}`); }
  }
  return out;
}

/** Checks everything a container config holds (create refuses before changing anything). */
export function validateConfig(c: ContainerConfig): void {
  if (c.hostname) validateHostname(c.hostname);
  if (c.domainname) validateHostname(c.domainname, 'domainname');
  for (const e of c.env) {
    const i = e.indexOf('=');
    if (i <= 0) bad(`invalid environment variable ${showValue(e)}`);
    if (e.includes('\0')) bad(`invalid environment variable ${showValue(e)}: contains a NUL byte`);
  }
  if (c.workdir && !c.workdir.startsWith('/')) bad(`the working directory '${c.workdir}' is invalid, it needs to be an absolute path`);
  for (const [k, v] of Object.entries(c.labels)) validateLabel(`${k}=${v}`);
  for (const [name, ip] of c.extraHosts) {
    validateHostname(name, '--add-host name');
    // Either family (strict, no zone), written to /etc/hosts as given.
    if (isIP(ip) === 0 && ip !== 'host-gateway') bad(`invalid IP address in add-host: ${showValue(ip)}`);
  }
  for (const d of c.dnsSearch) if (d !== '.' ) validateHostname(d.replace(/\.$/, ''), '--dns-search domain');
  for (const o of c.dnsOptions) if (!/^[\x21-\x7e]+$/.test(o)) bad(`invalid --dns-option ${showValue(o)}`);
  for (const e of c.exposed) parseExpose(e);
  if (c.user && !/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/.test(c.user)) bad(`invalid --user ${showValue(c.user)}`);
}

/** The container's settings that are not network state: kept in <containerDir>/config.json (mode 0600: the
 *  environment may hold secrets), written before the container is committed, removed with its directory. */
export interface ContainerConfig {
  /** '' = Docker's default: the first 12 characters of the id. */
  hostname: string;
  domainname: string;
  /** K=V, in order; later ones win. */
  env: string[];
  /** '' = the caller's working directory (there is no image to name one). */
  workdir: string;
  labels: Record<string, string>;
  /** --add-host entries: [name, ip]. */
  extraHosts: Array<[string, string]>;
  dnsSearch: string[];
  dnsOptions: string[];
  /** --expose / -P: "80/tcp". */
  exposed: string[];
  tty: boolean;
  interactive: boolean;
  /** --init: recorded only. Docker runs tini as PID 1 to reap orphans and forward signals; here there is no PID
   *  namespace: the detached supervisor forwards signals and the host's init reaps orphans. */
  init: boolean;
  user: string;
  /** --mac-address of eth0 ('' = derived from the address, as Docker's). */
  macAddress: string;
  /** What the store says of the container that no kernel object does, kept for the store's rebuild from the
   *  kernel (src/engine/rebuild.ts). Fixed at create; absent for containers made before it existed. */
  recovery?: RecoveryFields;
}

export interface RecoveryFields {
  name: string;
  mode: NetworkMode;
  modeTarget: string | null;
  command: string[];
  ports: PortMapping[];
  dns: string[];
  autoRemove: boolean;
  created: string;
}

export const DEFAULT_CONFIG: ContainerConfig = {
  hostname: '', domainname: '', env: [], workdir: '', labels: {}, extraHosts: [], dnsSearch: [], dnsOptions: [], exposed: [],
  tty: false, interactive: false, init: false, user: '', macAddress: '',
};

function configFile(h: Host, id: string): string {
  return path.join(h.containerDir(id), 'config.json');
}

/** The container's config (defaults for containers made before it existed). */
export function containerConfig(h: Host, c: ContainerRecord): ContainerConfig {
  try {
    return { ...DEFAULT_CONFIG, ...(JSON.parse(fs.readFileSync(configFile(h, c.id), 'utf8')) as Partial<ContainerConfig>) };
  } catch {
    return { ...DEFAULT_CONFIG };
  }
}

export function containerLabels(h: Host, c: ContainerRecord): Record<string, string> {
  return containerConfig(h, c).labels;
}

export function writeConfig(h: Host, id: string, cfg: ContainerConfig): void {
  fs.mkdirSync(h.containerDir(id), { recursive: true, mode: 0o711 });
  fs.writeFileSync(configFile(h, id), JSON.stringify(cfg), { mode: 0o600 });
}
