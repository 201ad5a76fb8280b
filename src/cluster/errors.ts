// The cluster's errors, and the parsing of the etcd endpoints a user gives. Pure.
import { UserError, showValue } from '../util/errors.js';
import { Addr } from '../util/addr.js';

/** etcd could not be reached (or gave no answer) within the bound: one line for the user, exit status 1. */
export class ClusterUnavailable extends UserError {
  constructor(readonly endpoints: readonly string[], readonly afterMs: number | null, cause?: string) {
    const within = afterMs === null ? '' : `no answer within ${(afterMs / 1000).toFixed(1)} s`;
    const why = [within, cause ? oneLine(cause) : ''].filter(Boolean).join(': ');
    super(`etcd at ${endpoints.join(',')} unreachable${why ? ` (${why})` : ''}`, 'refused');
    this.name = 'ClusterUnavailable';
  }
}

/** This host is not (or no longer) joined: its lease is gone. */
export class NotJoined extends UserError {
  constructor(host: string) {
    super(`host ${host} has not joined the cluster (nsnet cluster join)`, 'refused');
    this.name = 'NotJoined';
  }
}

function oneLine(s: string): string {
  const l = s.replace(/\s+/g, ' ').trim();
  return l.length > 160 ? `${l.slice(0, 160)}...` : l;
}

/**
 * The etcd client endpoints from the user's text: a comma-separated list of etcd://HOST:PORT, http://HOST:PORT
 * or HOST[:PORT] (port 2379 by default; an IPv6 address in brackets). Returns "http://HOST:PORT" each, without
 * duplicates. TLS (https://) is refused with a clear message: not supported yet.
 */
export function parseEndpoints(text: string | readonly string[]): string[] {
  const items = (typeof text === 'string' ? text.split(',') : text.flatMap((t) => t.split(','))).map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new UserError('no etcd endpoint given (expected etcd://HOST:PORT[,etcd://HOST:PORT...])');
  const out: string[] = [];
  for (const item of items) {
    const m = /^(?:([a-z][a-z0-9+.-]*):\/\/)?(\[[^\]]+\]|[^:/[\]]+)(?::([0-9]{1,5}))?\/?$/i.exec(item);
    const bad = (why: string): never => {
      throw new UserError(`invalid etcd endpoint ${showValue(item)}: ${why}`);
    };
    if (!m) bad('expected etcd://HOST:PORT');
    const [, scheme, rawHost, rawPort] = m!;
    const s = (scheme ?? 'etcd').toLowerCase();
    if (s === 'https' || s === 'etcds') bad('TLS endpoints are not supported yet');
    if (s !== 'etcd' && s !== 'http') bad(`unknown scheme ${s}:// (expected etcd:// or http://)`);
    let host = rawHost;
    if (host.startsWith('[')) {
      const a = Addr.tryParse(host.slice(1, -1));
      if (!a || a.family !== 6) bad('expected an IPv6 address inside [ ]');
      host = `[${a!.toString()}]`;
    } else if (!Addr.tryParse(host) && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(host)) {
      bad('expected an IP address or a host name');
    }
    const port = rawPort === undefined ? 2379 : Number(rawPort);
    if (!(port >= 1 && port <= 65535)) bad('the port must be 1..65535');
    const url = `http://${host}:${port}`;
    if (!out.includes(url)) out.push(url);
  }
  return out;
}
