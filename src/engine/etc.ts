// Each container's own /etc/resolv.conf and /etc/hosts (bound over /etc in its private mount namespace).
import fs from 'node:fs';
import path from 'node:path';
import { parseResolvConf, renderResolvConf } from '../dns/resolvconf.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord } from '../types.js';
import type { Host } from './host.js';
import { writeFileNoFollow } from './statedir.js';
import { containerConfig } from './config.js';

/** The file the host's upstream resolver configuration comes from: NSNET_RESOLV_CONF if set, else
 *  /etc/resolv.conf; absolute (the resolver follows it from /). */
export function resolvConfFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.NSNET_RESOLV_CONF || '/etc/resolv.conf');
}

/** The host's upstream resolver configuration (resolvConfFile). */
export function hostResolvConf(env: NodeJS.ProcessEnv = process.env): { nameservers: string[]; search: string[]; options: string[] } {
  const file = resolvConfFile(env);
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    /* no resolv.conf: no upstreams */
  }
  return parseResolvConf(text);
}

/** Loopback resolvers (e.g. systemd-resolved's 127.0.0.53) are unreachable from a container's own netns. */
export function usableUpstreams(ns: string[]): string[] {
  return ns.filter((s) => !s.startsWith('127.') && s !== '::1');
}

export function etcPaths(h: Host, c: ContainerRecord): { resolvConf: string; hosts: string; hostname: string } {
  const dir = h.containerDir(c.id);
  return { resolvConf: path.join(dir, 'resolv.conf'), hosts: path.join(dir, 'hosts'), hostname: path.join(dir, 'hostname') };
}

/** Writes the container's resolv.conf and hosts. On a user-defined network the nameserver is nsnet's resolver
 *  on the first network's gateway; on the default bridge (no name service, as Docker) the host's upstreams
 *  (or --dns) are used directly. */
export function writeEtc(h: Host, c: ContainerRecord, eps: EndpointRecord[], nets: Map<string, NetworkRecord>): void {
  if (!h.store.containerById(c.id)) return; // removed meanwhile (an exec racing rm): do not recreate its directory
  const dir = h.containerDir(c.id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
  const host = hostResolvConf(h.env);
  const first = eps[0] ? nets.get(eps[0].networkId) : undefined;
  let nameservers: string[];
  // One nameserver, as Docker's: the IPv4 gateway; on an IPv6-only network the IPv6 one.
  if (first && !first.isDefault) nameservers = [first.gateway || first.gateway6 || ''].filter(Boolean);
  else nameservers = c.dns.length ? c.dns : usableUpstreams(host.nameservers);
  const p = etcPaths(h, c);
  const cfg = containerConfig(h, c);
  // --dns-search / --dns-option replace the host's, as Docker's do.
  writeInPlace(p.resolvConf, renderResolvConf(nameservers, cfg.dnsSearch.length ? cfg.dnsSearch : host.search,
    cfg.dnsOptions.length ? cfg.dnsOptions : host.options));
  // As Docker's: the defaults, the --add-host entries, then the container's own address with its hostname (nsnet
  // names the container's name first, then the hostname, then the short id).
  const hostname = cfg.hostname || c.id.slice(0, 12);
  const names = [...new Set([c.name, hostname, ...(hostname.includes('.') ? [hostname.split('.')[0]] : []), c.id.slice(0, 12)])].join(' ');
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  for (const [name, ip] of cfg.extraHosts) lines.push(`${ip === 'host-gateway' ? (first?.gateway || first?.gateway6 || '127.0.0.1') : ip}\t${name}`);
  for (const e of eps) {
    if (e.ip) lines.push(`${e.ip}\t${names}`);
    if (e.ip6) lines.push(`${e.ip6}\t${names}`);
  }
  if (!eps.length) lines.push(`127.0.1.1\t${names}`);
  writeInPlace(p.hosts, lines.join('\n') + '\n');
  writeInPlace(p.hostname, hostname + '\n');
}

/** Brings the files up to date if they exist (a process has been launched in the container); otherwise the first
 *  launch writes them. */
export function refreshEtc(h: Host, c: ContainerRecord, eps: EndpointRecord[], nets: Map<string, NetworkRecord>): void {
  if (fs.existsSync(etcPaths(h, c).hosts)) writeEtc(h, c, eps, nets);
}

/** Rewrites in place (same inode): the file is bind-mounted into running containers, so a rename would not
 *  be seen by them. */
function writeInPlace(file: string, content: string): void {
  // Never through a symlink planted at the name (O_NOFOLLOW): root would write wherever it points.
  writeFileNoFollow(file, content, 0o644);
}
