// What a process may do, as the kernel sees it: its credentials (/proc/<pid>/status), its namespaces, its root
// directory and its LSM label. The resident helper serves a client only when all of this equals its own, so that
// a command served by the helper can do exactly what the same command run by the client itself could do.
import fs from 'node:fs';

/** Fields of /proc/<pid>/status that decide what a process may do. Umask is not among them: the helper applies
 *  the client's umask to each request instead. */
const STATUS_FIELDS = ['Uid', 'Gid', 'Groups', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp', 'Seccomp_filters'];
/** Namespaces whose view the engine depends on (paths, /proc, users); the network namespace is compared apart
 *  (the host netns may be given by path). */
const NAMESPACES = ['mnt', 'user', 'pid'];

export interface ProcContext {
  /** Field -> value, for STATUS_FIELDS, plus 'ns.<name>', 'root' and 'lsm'. */
  fields: Record<string, string>;
  umask: number | null;
  /** Inode of its network namespace. */
  netIno: number;
}

/** The fields of /proc/<pid>/status that decide what it may do (and its umask). */
function statusFields(pid: number): { fields: Record<string, string>; umask: number | null } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const fields: Record<string, string> = {};
  let umask: number | null = null;
  for (const line of status.split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const k = line.slice(0, i);
    const v = line.slice(i + 1).trim().replace(/\s+/g, ' ');
    if (STATUS_FIELDS.includes(k)) fields[k] = v;
    else if (k === 'Umask') umask = parseInt(v, 8);
  }
  for (const f of STATUS_FIELDS) fields[f] ??= '';
  return { fields, umask };
}

/** The context of a process; throws if it cannot be read (the process is gone). */
export function procContext(pid: number): ProcContext {
  const { fields, umask } = statusFields(pid);
  for (const ns of NAMESPACES) {
    const st = fs.statSync(`/proc/${pid}/ns/${ns}`);
    fields[`ns.${ns}`] = `${st.dev}:${st.ino}`;
  }
  const root = fs.statSync(`/proc/${pid}/root`);
  fields.root = `${root.dev}:${root.ino}`;
  let lsm = '';
  try {
    lsm = fs.readFileSync(`/proc/${pid}/attr/current`, 'utf8').replace(/\0/g, '').trim();
  } catch { /* no LSM label (EINVAL without an LSM that has one) */ }
  fields.lsm = lsm;
  return { fields, umask, netIno: fs.statSync(`/proc/${pid}/ns/net`).ino };
}

/** The first field in which `a` differs from `b` (e.g. 'CapEff'), or null when they are the same. */
export function contextMismatch(a: ProcContext, b: ProcContext): string | null {
  for (const k of Object.keys(b.fields)) if (a.fields[k] !== b.fields[k]) return k;
  return null;
}

/** Whether this process has every capability its bounding set allows, no no_new_privs and no more seccomp than
 *  PID 1: only such a client starts a resident helper (a helper serves only clients exactly like itself, so one
 *  started by a restricted client would turn the unrestricted ones away until it exits). */
export function unrestricted(): boolean {
  try {
    const me = statusFields(process.pid).fields;
    const init = statusFields(1).fields; // only its status: its namespaces may not be ours to look at
    return me.CapEff === me.CapBnd && me.CapPrm === me.CapBnd && me.CapBnd === init.CapBnd && me.NoNewPrivs === '0'
      && me.Seccomp === init.Seccomp;
  } catch {
    return false;
  }
}
