// Starting and ending the processes of a sandbox ("container").
// A process is started with the main thread switched into the container's netns (spawn forks synchronously,
// so the child is born there). When the container has its own /etc/resolv.conf and /etc/hosts, the child goes
// through util-linux `unshare --mount --propagation slave` and binds them over /etc in its private mount
// namespace, exactly what `ip netns exec` does with /etc/netns/NAME/ (docs/kernel-notes.md §12). "slave"
// propagation matters: when nsnet later unmounts a /run/netns entry on the host, the unmount propagates into
// the container's mount namespace, so the copy there does not keep a deleted netns (and its veths) alive.
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { childProcess } from '../util/lazy.js';
import fs from 'node:fs';
import path from 'node:path';
import { close, openPath } from './libc.js';
import { inNetns, netnsPath } from './netns.js';
import { isAlive, processStart } from './pidstat.js';

export { isAlive, processStart };

export interface EtcFiles {
  resolvConf: string;
  hosts: string;
  /** Bound over /etc/hostname when both exist. */
  hostname?: string;
}

/** Whom to run the command as (`-u`): setpriv switches after the mounts (which need root). */
export interface RunAs {
  uid: number;
  gid: number;
  /** The user's supplementary groups (a user of the passwd file) or none (a bare uid). */
  initGroups: boolean;
}

export interface LaunchSpec {
  command: string[];
  /** Netns to start in (fd, for in-process starts); null = the host netns. */
  netnsFd: number | null;
  /** The same netns as a path (for detached starts, which enter it with nsenter). */
  netnsPath: string | null;
  etc: EtcFiles | null;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The container's hostname, set in a UTS namespace of the command's own (with etc only); null/absent: the
   *  caller's UTS namespace (host mode). */
  hostname?: string | null;
  /** Foreground only: attach our stdin (`-i`); otherwise the command reads /dev/null, as Docker's without -i. */
  stdin?: boolean;
  user?: RunAs | null;
  /** The command's stderr goes to this file (appended), apart from its stdout: `logs` keeps them apart. */
  stderrFile?: string;
}

const UNSHARE = ['/usr/bin/unshare', '/bin/unshare'].find((p) => fs.existsSync(p)) ?? 'unshare';
const NSENTER = ['/usr/bin/nsenter', '/bin/nsenter'].find((p) => fs.existsSync(p)) ?? 'nsenter';

// Inside the container's private mount (and UTS) namespace: $1 resolv.conf, $2 hosts, $3 hostname file (may be
// absent: containers made by older versions), $4 hostname ('' = keep the UTS namespace's), then the command.
// The hostname is written to /proc/sys/kernel/hostname of the new UTS namespace (no hostname(1) needed).
const MOUNT_ETC = [
  'mount --bind -- "$1" /etc/resolv.conf && mount --bind -- "$2" /etc/hosts || exit 125',
  'if [ -e "$3" ] && [ -e /etc/hostname ]; then mount --bind -- "$3" /etc/hostname || exit 125; fi',
  'if [ -n "$4" ]; then printf %s "$4" > /proc/sys/kernel/hostname || exit 125; fi',
  'shift 4; exec "$@"',
].join('\n');
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p)) ?? 'setpriv';

// Detached supervisor, in the host netns and the host mount namespace: runs the command, records its exit
// code, and for --rm containers removes the container through nsnet itself when the command ends.
const SUPERVISE = [
  'ec=$1; shift',
  'arb=$NSNET_AUTOREMOVE_BIN; arid=$NSNET_AUTOREMOVE_ID; unset NSNET_AUTOREMOVE_BIN NSNET_AUTOREMOVE_ID',
  // Background + wait so that SIGTERM/SIGHUP reach the command and the supervisor lives on to record its status.
  '"$@" & pid=$!',
  "trap 'kill -TERM $pid 2>/dev/null' TERM",
  "trap 'kill -HUP $pid 2>/dev/null' HUP",
  'while :; do wait $pid; rc=$?; if ! kill -0 $pid 2>/dev/null; then wait $pid 2>/dev/null; r2=$?; [ $r2 -ne 127 ] && rc=$r2; break; fi; done',
  // noclobber: the exit file was removed before the launch, so this creates it (O_EXCL) and never writes through
  // something planted at its name meanwhile.
  'set -C; echo $rc > "$ec"; set +C',
  // rm ends the container's process group, this supervisor included: run it in a session of its own.
  'if [ -n "$arid" ]; then setsid -f "$arb" rm -f "$arid" >/dev/null 2>&1 </dev/null; fi',
  'exit $rc',
].join('\n');

/** argv that runs the command with the container's /etc files (the caller is already in its netns). */
function innerArgv(spec: LaunchSpec): string[] {
  const u = spec.user;
  let command = u ? [SETPRIV, `--reuid=${u.uid}`, `--regid=${u.gid}`, u.initGroups ? '--init-groups' : '--clear-groups', '--', ...spec.command] : spec.command;
  // Opened by the (root) shell before the user switch; exec leaves no extra process behind.
  if (spec.stderrFile) command = ['/bin/sh', '-c', 'f=$1; shift; exec "$@" 2>>"$f"', 'nsnet-stderr', spec.stderrFile, ...command];
  if (!spec.etc) return command;
  const uts = spec.hostname ? ['--uts'] : [];
  return [UNSHARE, '--mount', ...uts, '--propagation', 'slave', '--', '/bin/sh', '-c', MOUNT_ETC, 'nsnet-init',
    spec.etc.resolvConf, spec.etc.hosts, spec.etc.hostname ?? '', spec.hostname ?? '', ...command];
}

/** Runs `fn` (which forks synchronously) inside the spec's netns: by fd, by path, or in the host netns. */
function within<T>(spec: LaunchSpec, fn: () => T): T {
  if (spec.netnsFd !== null) return inNetns(spec.netnsFd, fn);
  if (!spec.netnsPath) return fn();
  const fd = openPath(spec.netnsPath);
  try {
    return inNetns(fd, fn);
  } finally {
    close(fd);
  }
}

function spawnIn(spec: LaunchSpec, args: string[], opts: SpawnOptions): ChildProcess {
  return within(spec, () => childProcess().spawn(args[0], args.slice(1), { ...opts, env: spec.env ?? process.env, cwd: spec.cwd }));
}

/** Resolves a command name through PATH the way execvp would; null when not found/executable. */
export function findExecutable(cmd: string, envPath = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', cwd = process.cwd()): string | null {
  const ok = (p: string) => {
    try {
      const st = fs.statSync(p);
      if (!st.isFile()) return false;
      fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (cmd.includes('/')) return ok(path.resolve(cwd, cmd)) ? path.resolve(cwd, cmd) : null;
  for (const dir of envPath.split(':')) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    if (ok(p)) return p;
  }
  return null;
}

/** What a detached start needs: the supervisor's argv and environment, its working directory (undefined: the
 *  caller's) and the log its output is appended to (stdin is /dev/null). It starts in the caller's netns. */
export interface DetachedLaunch {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string | undefined;
  log: string;
}
/** Starts a detached launch somewhere else and returns its pid: the resident helper has its client do it, so that
 *  the container's processes get the client's cgroup, rlimits, session and parent, never the helper's. */
export type DetachedLauncher = (l: DetachedLaunch) => number;
let detachedLauncher: DetachedLauncher | null = null;
/** Sets (or with null, clears) who starts detached processes; the default is this process itself. */
export function setDetachedLauncher(l: DetachedLauncher | null): void {
  detachedLauncher = l;
}

/** Starts a detached process (own session and process group) writing to `logPath`, in the caller's current
 *  netns (the container's is entered through `spec.netnsPath`); returns the pid of its
 *  supervisor (the process group leader). The command's exit code is written to `exitFile` when it ends; with
 *  `autoRemove`, the supervisor then runs `<nsnetBin> rm -f <id>`. */
export function launchDetached(spec: LaunchSpec, logPath: string, exitFile: string, autoRemove?: { bin: string; id: string }): { pid: number; start: string } {
  let inner = innerArgv(spec);
  if (spec.netnsPath) inner = [NSENTER, `--net=${spec.netnsPath}`, '--', ...inner];
  const env = { ...(spec.env ?? process.env) };
  if (autoRemove) {
    env.NSNET_AUTOREMOVE_BIN = autoRemove.bin;
    env.NSNET_AUTOREMOVE_ID = autoRemove.id;
  }
  const args = ['/bin/sh', '-c', SUPERVISE, 'nsnet-supervise', exitFile, ...inner];
  // O_NOFOLLOW: a symlink planted at the log's name must not make root append wherever it points. Opened here
  // even when someone else starts the process (the client of the resident helper opens it again): the file is
  // made, and any error reported, exactly as in-process.
  const log = fs.openSync(logPath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW, 0o640);
  if (detachedLauncher) {
    fs.closeSync(log);
    const pid = detachedLauncher({ argv: args, env, cwd: spec.cwd, log: logPath });
    return { pid, start: processStart(pid) ?? '' };
  }
  try {
    const child = childProcess().spawn(args[0], args.slice(1), { detached: true, stdio: ['ignore', log, log], env, cwd: spec.cwd });
    if (child.pid === undefined) throw new Error(`cannot start ${spec.command[0]}`);
    child.unref();
    const start = processStart(child.pid) ?? '';
    return { pid: child.pid, start };
  } finally {
    fs.closeSync(log);
  }
}

/** Starts a foreground process attached to our stdio. Resolves with its exit code (128+signal if killed). */
export function launchForeground(spec: LaunchSpec, onStart?: (pid: number) => void): Promise<number> {
  const child = spawnIn(spec, innerArgv(spec), { stdio: [spec.stdin === false ? 'ignore' : 'inherit', 'inherit', 'inherit'] });
  if (child.pid !== undefined) onStart?.(child.pid);
  const forward = (sig: NodeJS.Signals) => () => { try { child.kill(sig); } catch { /* gone */ } };
  const handlers: Array<[NodeJS.Signals, () => void]> = (['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]).map((s) => [s, forward(s)]);
  for (const [s, h] of handlers) process.on(s, h);
  return new Promise((resolve) => {
    child.on('error', () => resolve(127));
    child.on('exit', (code, signal) => {
      for (const [s, h] of handlers) process.off(s, h);
      resolve(code ?? 128 + (signal ? (osSignal(signal) ?? 1) : 1));
    });
  });
}

/** Starts a command in the background with no stdio and does not wait for it (`exec -d`). */
export function launchBackground(spec: LaunchSpec): number {
  const child = spawnIn(spec, innerArgv(spec), { stdio: 'ignore', detached: true });
  if (child.pid === undefined) throw new Error(`cannot start ${spec.command[0]}`);
  child.on('error', () => undefined);
  child.unref();
  return child.pid;
}

/** Resolves `-u USER[:GROUP]` (names or numbers) from the host's passwd and group files, as Docker resolves them
 *  from the image's; null when a name is unknown. */
export function resolveUser(spec: string): RunAs | null {
  const [user, group] = spec.split(':', 2);
  const read = (f: string) => { try { return fs.readFileSync(f, 'utf8').split('\n').map((l) => l.split(':')); } catch { return []; } };
  const pw = read('/etc/passwd').find((f) => f[0] === user || (/^\d+$/.test(user) && f[2] === user));
  let uid: number;
  let gid: number;
  if (pw) { uid = Number(pw[2]); gid = Number(pw[3]); } else if (/^\d+$/.test(user)) { uid = Number(user); gid = 0; } else return null; // as runc: a uid not in passwd gets gid 0
  if (group !== undefined) {
    const gr = read('/etc/group').find((f) => f[0] === group || (/^\d+$/.test(group) && f[2] === group));
    if (gr) gid = Number(gr[2]); else if (/^\d+$/.test(group)) gid = Number(group); else return null;
  }
  return { uid, gid, initGroups: !!pw && group === undefined };
}

/** The home directory of a uid in the host's passwd file ('/' when it has none, as Docker's). */
export function homeOf(uid: number): string {
  try {
    const f = fs.readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')).find((x) => x[2] === String(uid));
    return f?.[5] || '/';
  } catch {
    return '/';
  }
}

/** Runs a command to completion with captured output (for tests and `exec` with captured output). */
export function runCaptured(spec: LaunchSpec): { status: number; stdout: string; stderr: string } {
  const args = innerArgv(spec);
  const go = () => childProcess().spawnSync(args[0], args.slice(1), { env: spec.env ?? process.env, encoding: 'utf8' });
  const r = within(spec, go);
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

function osSignal(sig: NodeJS.Signals): number | undefined {
  const n = (fs.constants as unknown as Record<string, number>)[sig];
  if (n) return n;
  const map: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 };
  return map[sig];
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), or null if the process is gone/zombie. */
/** PIDs of processes whose network namespace is the one with inode `nsIno`. */
export function pidsInNetns(nsIno: number): number[] {
  const out: number[] = [];
  // readlink of the ns link ("net:[INODE]") costs half a stat through it (measured: 0.6 vs 1.2 ms for 120 processes).
  const want = `net:[${nsIno}]`;
  for (const d of fs.readdirSync('/proc')) {
    const c = d.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    try {
      if (fs.readlinkSync(`/proc/${d}/ns/net`) === want) out.push(Number(d));
    } catch {
      /* exited or not ours to read */
    }
  }
  return out;
}

/** SIGKILLs every process inside the named netns (/run/netns/NAME) but ourselves; returns how many. */
export function killNetnsProcesses(name: string): number {
  let ino: number;
  try {
    ino = fs.statSync(netnsPath(name)).ino;
  } catch {
    return 0;
  }
  const pids = pidsInNetns(ino).filter((p) => p !== process.pid);
  for (const pid of pids) signal(pid, 'SIGKILL');
  return pids.length;
}

export function signal(pid: number, sig: NodeJS.Signals | number): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** The running detached supervisors (launchDetached) by the exit file they were given: pid and start time. Reads
 *  every process's cmdline (a full /proc scan: for the store's rebuild, not for hot paths). */
export function findSupervisors(): Map<string, { pid: number; start: string }> {
  const out = new Map<string, { pid: number; start: string }>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // exited meanwhile
    }
    if (argv[0] !== '/bin/sh' || argv[1] !== '-c' || argv[2] !== SUPERVISE || argv[3] !== 'nsnet-supervise' || !argv[4]) continue;
    const pid = Number(d);
    const start = processStart(pid);
    if (start) out.set(argv[4], { pid, start });
  }
  return out;
}
