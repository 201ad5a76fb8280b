// The state directory is trusted with root's authority: nsnet writes files there, reads pids it signals, names it
// unlinks. So it must be a directory that nobody but root (the effective uid) can change, reached through a path
// nobody else can redirect. This module checks that, and offers the no-symlink file opens the engine (and anyone
// else writing in the state directory) should use.
import fs from 'node:fs';
import path from 'node:path';
import { UserError, showValue } from '../util/errors.js';

/** Directories nsnet makes directly under the state directory (checked whenever they exist). */
export const STATE_SUBDIRS: readonly string[] = ['containers', 'dns', 'helper'];

/** Filesystems that are never a state directory: their "files" are kernel interfaces (NSNET_ROOT=/proc/1 made
 *  SQLite spin forever on a lock it can never take). statfs(2) f_type magic numbers. */
const PSEUDO_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'], [0x62656572, 'sysfs'], [0x27e0eb, 'cgroup'], [0x63677270, 'cgroup2'], [0x64626720, 'debugfs'],
  [0x73636673, 'securityfs'], [0x1cd1, 'devpts'], [0xcafe4a11, 'bpf'], [0x74726163, 'tracefs'], [0x6e736673, 'nsfs'],
  [0x42494e4d, 'binfmt_misc'], [0x19800202, 'mqueue'], [0xf97cff8c, 'selinuxfs'],
]);

function refuse(dir: string, why: string): never {
  throw new UserError(`state directory ${showValue(dir)} (--root / NSNET_ROOT): ${why}`, 'refused');
}

const euid = (): number => process.geteuid?.() ?? 0;

/** Why `st` (a directory on the path to, or inside, the state directory) lets someone other than us change what
 *  is below it, or null. `self`: the state directory or one of nsnet's own directories (no group/other write at
 *  all); otherwise an ancestor (shared sticky directories such as /tmp are fine: nobody can rename or delete
 *  another user's entry in them). */
function unsafe(st: fs.Stats, self: boolean): string | null {
  const me = euid();
  if (st.uid !== 0 && st.uid !== me) return `owned by uid ${st.uid}, another user (it must be owned by ${me === 0 ? 'root' : `uid ${me}`})`;
  const w = st.mode & 0o022;
  if (self && w) return `writable by ${st.mode & 0o002 ? 'others' : 'its group'} (mode ${(st.mode & 0o7777).toString(8)}; it must be writable only by its owner: chmod go-w)`;
  if (!self && w && !(st.mode & 0o1000)) return `writable by ${st.mode & 0o002 ? 'others' : 'its group'} without the sticky bit (mode ${(st.mode & 0o7777).toString(8)}): another user could replace what is below it`;
  return null;
}

/**
 * Checks (and creates, mode 0711, if missing) the state directory `raw`; returns its real path. Refuses, with one
 * UserError and before anything is written inside it: an empty name or one with control characters (a newline
 * would forge lines of every message naming it); a pseudo filesystem (/proc, /sys...); a directory not owned by
 * the effective uid or writable by group/others; any ancestor another user could swap (owned by another user, or
 * group/other-writable without the sticky bit); and nsnet's own subdirectories (containers/, dns/, helper/) that
 * are symlinks, not directories, or fail the same owner/mode rule. Everything nsnet later creates inside is made
 * by root in a directory only root can write, so checking these is enough.
 */
export function checkStateDir(raw: string): string {
  if (typeof raw !== 'string' || raw === '') throw new UserError('state directory "" (NSNET_ROOT / --root): must not be empty', 'invalid');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(raw)) throw new UserError(`state directory ${showValue(raw)} (--root / NSNET_ROOT): control characters (such as a newline) are not allowed in its path`, 'invalid');
  // Before creating anything: the deepest part of the path that exists must be safe to create in (nothing is
  // made inside a directory another user controls, nor on /proc).
  // (Every command passes here: the common case, an existing directory, costs a handful of syscalls, ≈0.1 ms.)
  const st0 = fs.statSync(raw, { throwIfNoEntry: false });
  let existing = path.resolve(raw);
  if (!st0) while (!fs.existsSync(existing) && existing !== '/') existing = path.dirname(existing);
  if (existing !== path.resolve(raw)) {
    try {
      checkChain(fs.realpathSync(existing), raw, false);
    } catch (e) {
      if (e instanceof UserError) throw e;
      /* not a directory and the like: reported by mkdir below */
    }
  }
  try {
    if (!st0) fs.mkdirSync(raw, { recursive: true, mode: 0o711 });
    if (!(st0 ?? fs.statSync(raw)).isDirectory()) throw Object.assign(new Error(), { code: 'ENOTDIR' });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`state directory ${JSON.stringify(raw)}: ${code === 'EEXIST' || code === 'ENOTDIR' ? 'not a directory' : code ?? (e as Error).message}`, 'invalid');
  }
  const root = fs.realpathSync(raw);
  const shown = checkChain(root, raw, true);
  for (const sub of STATE_SUBDIRS) checkOwnDir(root, sub, shown);
  return root;
}

/** Checks the real path `dir` (no symlinks left) for checkStateDir: not a pseudo filesystem, every ancestor one no
 *  other user can change, and `dir` itself too (`self`: by the state directory's own stricter rule). Returns how
 *  to show the state directory in messages. */
function checkChain(dir: string, raw: string, self: boolean): string {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(dir)) throw new UserError(`state directory ${showValue(raw)} (--root / NSNET_ROOT): its real path ${showValue(dir)} has control characters`, 'invalid');
  const shown = !self || dir === raw ? raw : `${raw} (${dir})`;
  const fsType = PSEUDO_FS.get(Number(fs.statfsSync(dir).type));
  if (fsType) refuse(shown, `is on a ${fsType} filesystem (kernel interfaces, not a place for state)`);
  const parts = dir.split('/').filter(Boolean);
  for (let i = 0; i < parts.length + (self ? 0 : 1); i++) {
    const anc = '/' + parts.slice(0, i).join('/');
    const why = unsafe(fs.lstatSync(anc), false);
    if (why) refuse(shown, `its parent directory ${anc} is ${why}`);
  }
  if (!self) return shown;
  const why = unsafe(fs.lstatSync(dir), true);
  if (why) refuse(shown, `is ${why}`);
  return shown;
}

/** One of nsnet's directories inside the (checked) state directory, if it exists: a real directory (not a
 *  symlink), owned by us, writable only by us. */
function checkOwnDir(root: string, sub: string, shown: string): void {
  const st = fs.lstatSync(path.join(root, sub), { throwIfNoEntry: false });
  if (!st) return; // not there yet: nsnet creates it (only root can, in a checked state directory)
  if (st.isSymbolicLink()) refuse(shown, `${sub}/ is a symbolic link (it must be a directory nsnet made)`);
  if (!st.isDirectory()) refuse(shown, `${sub} is not a directory`);
  const why = unsafe(st, true);
  if (why) refuse(shown, `${sub}/ is ${why}`);
}

/** Creates a directory of nsnet's inside the state directory (mode 0711 unless given) and checks an existing one
 *  as checkStateDir does; returns its path. For others' directories too (dns/, helper/). */
export function ensureStateSubdir(root: string, sub: string, mode = 0o711): string {
  const p = path.join(root, sub);
  try {
    fs.mkdirSync(p, { mode });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  checkOwnDir(root, sub, root);
  return p;
}

const { O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND, O_NOFOLLOW, O_CLOEXEC } = fs.constants as typeof fs.constants & { O_CLOEXEC?: number };
const CLOEXEC = O_CLOEXEC ?? 0o2000000;

/** Flags for opening a state file without following a symlink at its last component (ELOOP instead). */
export const NOFOLLOW = { write: O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | CLOEXEC, append: O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | CLOEXEC, rdwr: O_RDWR | O_CREAT | O_NOFOLLOW | CLOEXEC } as const;

/** fs.openSync that refuses a symlink at `file` (ELOOP): `flags` is one of NOFOLLOW's, or 'w' / 'a' / 'r+'. */
export function openNoFollow(file: string, flags: number | 'w' | 'a' | 'r+' = 'w', mode = 0o600): number {
  const f = typeof flags === 'number' ? flags : flags === 'w' ? NOFOLLOW.write : flags === 'a' ? NOFOLLOW.append : NOFOLLOW.rdwr;
  return fs.openSync(file, f, mode);
}

/** Writes `data` to `file` in place (same inode: bind-mounted files stay current) without following a symlink. */
export function writeFileNoFollow(file: string, data: string | Uint8Array, mode = 0o600): void {
  const fd = openNoFollow(file, 'w', mode);
  try {
    fs.writeFileSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
}

/** Appends `data` to `file` without following a symlink. */
export function appendFileNoFollow(file: string, data: string | Uint8Array, mode = 0o600): void {
  const fd = openNoFollow(file, 'a', mode);
  try {
    fs.writeFileSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
}

/** Free space below which commands that create something refuse up front (a network create writes ≈100-200 KiB
 *  of store journal and resolver view before it is done; a disk that fills half-way leaves work for reconcile).
 *  NSNET_MIN_FREE_KB overrides it (0 disables the check). */
export const MIN_FREE_KB = 512;

/** Refuses (nothing changed) when the filesystem of the state directory has less than MIN_FREE_KB free (root's
 *  view: reserved blocks count). One statfs(2). */
export function ensureSpace(root: string, environ: NodeJS.ProcessEnv = process.env): void {
  const env = environ.NSNET_MIN_FREE_KB;
  const min = env !== undefined && /^[0-9]{1,9}$/.test(env) ? Number(env) : MIN_FREE_KB;
  if (!min) return;
  const s = fs.statfsSync(root);
  const freeKb = Math.floor((Number(s.bfree) * Number(s.bsize)) / 1024);
  if (freeKb < min) {
    throw new UserError(`the filesystem of the state directory ${root} is full (${freeKb} KiB free, nsnet needs ${min} KiB to ` +
      `record a change; NSNET_MIN_FREE_KB sets this): nothing was changed; free some space and retry`, 'refused');
  }
}

/** After a use case failed with `err`: runs `undo` (its rollback). If the rollback fails too (a full disk fails
 *  both), the error says so and what is left for reconcile; otherwise `err` itself is thrown. */
export function undoOrReport(err: unknown, left: string, undo: () => void): never {
  try {
    undo();
  } catch (u) {
    const first = (err as Error)?.message ?? String(err);
    throw Object.assign(new Error(`${first}; undoing it failed too (${(u as Error)?.message ?? String(u)}): ${left} is left ` +
      `unfinished: run nsnet reconcile (once the disk has space)`), { exitCode: 1 });
  }
  throw err;
}
