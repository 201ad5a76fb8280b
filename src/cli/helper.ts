// The resident helper: a long-lived nsnet process that runs CLI commands for the fast client (src/cli/client.c),
// so that a command pays neither Node's start-up nor the loading of the engine, SQLite, koffi and libnftables, nor
// the opening of the store, the netlink socket and the nftables context.
//
// One helper per state directory, host netns, mount namespace and build (its socket's name says which:
// client.ts helperPlan), started in the background by a command that ran in-process; it exits after
// NSNET_HELPER_IDLE_MS (default 60 s) without a command, or as soon as its socket file is removed or replaced.
//
// A served command behaves exactly as the same command run in-process by that client:
// - It serves only a client whose credentials, namespaces, root directory and LSM label are its own, read from the
//   kernel (SO_PEERCRED, then /proc/<pid>, pinned by SO_PEERPIDFD), never from what the client says; any other
//   client is told to run the command itself ('N'), as is a command it does not serve.
// - Each command runs with the client's argv, environment, working directory and umask, and nothing of it stays
//   after the request: nothing is written to disk, the environment is the helper's own again afterwards.
// - Processes of containers are started by the client (a 'L' frame: argv, environment, log file), never by the
//   helper: they get the client's cgroup, rlimits, session and parent (kernel/proc.ts setDetachedLauncher).
// - A request dies with its client: the helper announces it is about to start a request ('S') and starts it only
//   when the client confirms ('G'); a client that was interrupted, or gave up waiting because the helper was busy,
//   never confirms and runs the command itself or not at all. Once confirmed, the command runs to its end (or is
//   rolled back by the next command, as after a crash, if the helper dies), and the client says so on Ctrl-C.
//
// Protocol (frames: one type byte, a u32 LE length, the payload; see kernel/usock.ts):
//   client -> helper  I  its whole stdin (only for `nsnet cni`), then
//                     Q  "nsnet1\0" cwd "\0" argc "\0" argv... "\0" then the environment, "K=V\0" each
//   helper -> client  N  reason: run it yourself          S  about to start
//   client -> helper  G  go
//   helper -> client  O / E  stdout / stderr bytes        L  launch (netns, log, cwd, argc, argv..., env...)
//   client -> helper  P  the launched pid, or "E" + error text
//   helper -> client  X  exit status, last frame
import fs from 'node:fs';
import path from 'node:path';
import { contextMismatch, procContext, type ProcContext } from '../kernel/creds.js';
import { FileLock } from '../kernel/flock.js';
import { setDetachedLauncher, type DetachedLaunch } from '../kernel/proc.js';
import { UnixListener, closeFd, pidfdAlive, type UnixConn } from '../kernel/usock.js';
import { helperPlan, servedCommand, trustedDir } from './client.js';
import type { CommandIO } from './io.js';

type RunCli = (argv: string[], cmd: CommandIO) => Promise<number>;

export interface Request {
  argv: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/** How long a client may take to send its request, and to confirm a start. */
const CLIENT_MS = 5000;

/** Decodes a 'Q' payload; null if it is not one. Pure. */
export function parseRequest(p: Buffer): Request | null {
  const parts = p.toString('utf8').split('\0');
  if (parts[0] !== 'nsnet1' || parts.length < 3) return null;
  const cwd = parts[1];
  const argc = Number(parts[2]);
  if (!cwd.startsWith('/') || !Number.isInteger(argc) || argc < 0 || 3 + argc > parts.length) return null;
  const argv = parts.slice(3, 3 + argc);
  const env: NodeJS.ProcessEnv = {};
  for (const e of parts.slice(3 + argc)) {
    const i = e.indexOf('=');
    if (i > 0 && !(e.slice(0, i) in env)) env[e.slice(0, i)] = e.slice(i + 1);
  }
  return { argv, cwd, env };
}

/** Encodes a launch for the client ('L'): the netns to start in ('' = its own), log, cwd ('' = its own), argv, env. Pure. */
export function launchPayload(l: DetachedLaunch, netns: string): Buffer {
  const env = Object.entries(l.env).filter((kv): kv is [string, string] => kv[1] !== undefined).map(([k, v]) => `${k}=${v}`);
  return Buffer.from([netns, l.log, l.cwd ?? '', String(l.argv.length), ...l.argv, ...env].map((s) => s + '\0').join(''));
}

/** Has the client start a detached process and waits for its pid. */
function remoteLaunch(conn: UnixConn, l: DetachedLaunch, netns: string): number {
  const gone = new Error('the nsnet client went away before the container\'s process could be started');
  if (!conn.send('L', launchPayload(l, netns))) throw gone;
  const r = conn.recv(30000);
  if (!r || r.type !== 'P') throw gone;
  const text = r.payload.toString('utf8');
  if (text.startsWith('E')) throw new Error(`cannot start the container's process: ${text.slice(1)}`);
  const pid = Number(text);
  if (!Number.isInteger(pid) || pid <= 0) throw gone;
  return pid;
}

/** Runs one confirmed request: the client's environment, directory, umask and stdin, its output sent as it is
 *  written (a CommandIO given to the command: nothing of the process's own stdout, stderr or environment is
 *  replaced); returns the exit status. */
async function runOne(req: Request, input: Buffer | null, runCli: RunCli, conn: UnixConn, umask: number | null, netns: string): Promise<number> {
  const relay = (type: 'O' | 'E') => (chunk: string | Uint8Array) => {
    conn.send(type, typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  };
  const cmd: CommandIO = { out: relay('O'), err: relay('E'), env: req.env, input: () => input ?? Buffer.alloc(0), status: 0 };
  const savedUmask = umask === null ? null : process.umask(umask);
  process.chdir(req.cwd);
  setDetachedLauncher((l) => remoteLaunch(conn, l, netns));
  try {
    return await runCli(['node', 'nsnet', ...req.argv], cmd);
  } finally {
    setDetachedLauncher(null);
    process.chdir('/');
    if (savedUmask !== null) process.umask(savedUmask);
  }
}

/** Why this helper does not serve the client's request (null: it does). */
function refusal(req: Request, input: Buffer | null, client: ProcContext, self: ProcContext, clientPid: number, socket: string, bundle: string): string | null {
  const field = contextMismatch(client, self);
  if (field) return `the client differs from the helper in ${field}`;
  if (!servedCommand(req.argv)) return 'not a command the helper serves';
  // A CNI network configuration may name its own state directory (`root`, before NSNET_ROOT: the fast client
  // chose this helper by it).
  let root: unknown;
  if (input) {
    try {
      root = (JSON.parse(input.toString('utf8')) as { root?: unknown }).root;
    } catch {
      root = undefined; // not JSON: the command reports it
    }
  }
  const env = typeof root === 'string' && root ? { ...req.env, NSNET_ROOT: root } : req.env;
  const plan = helperPlan(req.argv, env, bundle, req.cwd, `/proc/${clientPid}`);
  if (!plan) return 'no state directory or host netns to serve';
  if (plan.socket !== socket) return 'another state directory, host netns, mount namespace or build';
  try {
    if (!fs.statSync(req.cwd).isDirectory()) return 'no working directory';
  } catch {
    return 'no working directory';
  }
  return null;
}

async function serveOne(conn: UnixConn, runCli: RunCli, self: ProcContext, socket: string, bundle: string): Promise<void> {
  let q = conn.recv(CLIENT_MS);
  let input: Buffer | null = null;
  if (q?.type === 'I') {
    input = q.payload;
    q = conn.recv(CLIENT_MS);
  }
  if (!q || q.type !== 'Q') return;
  const req = parseRequest(q.payload);
  if (!req) return;
  const cred = conn.peerCred();
  const pidfd = conn.peerPidfd();
  try {
    let client: ProcContext;
    try {
      client = procContext(cred.pid);
    } catch {
      return; // gone
    }
    // What /proc/<pid> said is about our client only if the process the pidfd pins still exists (no pid reuse).
    if (pidfd !== null && !pidfdAlive(pidfd)) return;
    const why = cred.uid !== 0 ? 'the client is not root' : refusal(req, input, client, self, cred.pid, socket, bundle);
    if (why) {
      conn.send('N', why);
      return;
    }
    if (conn.peerGone() || !conn.send('S')) return; // cancelled before we could start
    const go = conn.recv(CLIENT_MS);
    if (!go || go.type !== 'G') return; // interrupted, or it stopped waiting for us: it runs the command itself
    // The client starts containers' processes in the host netns: its own, or ours by path.
    const netns = client.netIno === self.netIno ? '' : `/proc/${process.pid}/ns/net`;
    const code = await runOne(req, input, runCli, conn, client.umask, netns);
    conn.send('X', String(code));
  } finally {
    if (pidfd !== null) closeFd(pidfd);
  }
}

/** Directories of the spool protocol of earlier builds (<root>/helper/<key>/q/...: requests held whole
 *  environments): removed, whatever they hold. */
function removeLegacySpool(dir: string): void {
  for (const n of fs.readdirSync(dir)) {
    const p = path.join(dir, n);
    try {
      if (fs.lstatSync(p).isDirectory()) fs.rmSync(p, { recursive: true, force: true });
    } catch { /* raced */ }
  }
}

export async function serveHelper(socket: string, runCli: RunCli, bundle: string): Promise<void> {
  const idleMs = Number(process.env.NSNET_HELPER_IDLE_MS ?? 60000);
  const dir = path.dirname(socket);
  const marker = socket.replace(/\.sock$/, '.starting');
  try {
    // Requests are commands run as root: serve only from directories nobody else can change.
    for (const d of [path.dirname(dir), dir]) {
      if (!trustedDir(d)) {
        process.stderr.write(`nsnet helper: ${d} must be root's and not writable by others: not serving\n`);
        return;
      }
    }
    removeLegacySpool(dir);
    const lock = new FileLock(socket.replace(/\.sock$/, '.lock'));
    if (!lock.tryAcquire()) return; // another helper serves this socket
    let listener: UnixListener;
    try {
      listener = UnixListener.listen(socket);
    } catch (e) {
      process.stderr.write(`nsnet helper: ${(e as Error).message}: not serving\n`);
      lock.close();
      return;
    }
    const self = procContext(process.pid);
    const tick = Math.min(1000, Math.max(50, idleMs / 4));
    let last = Date.now();
    try { fs.unlinkSync(marker); } catch { /* none */ }
    for (;;) {
      const conn = listener.accept(tick);
      if (conn) {
        try {
          await serveOne(conn, runCli, self, socket, bundle);
        } catch (e) {
          process.stderr.write(`nsnet helper: ${(e as Error).stack ?? e}\n`);
        } finally {
          conn.close();
        }
        last = Date.now();
      } else if (!listener.inPlace() || Date.now() - last >= idleMs) {
        break;
      }
      // Between two accepts, whatever the last command left to the event loop (timers, callbacks) runs.
      await new Promise((r) => setImmediate(r));
    }
    // Clients waiting in the backlog see the connection end before 'S' and run their command themselves.
    listener.close();
    lock.close();
  } finally {
    try { fs.unlinkSync(marker); } catch { /* none */ }
  }
}
