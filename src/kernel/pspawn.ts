// Starting a detached process without Node's child_process: glibc's posix_spawn(3) clones with CLONE_VM|CLONE_VFORK,
// so the parent neither copies its page tables (a fork of a 50 MB Node process costs 2-5 ms here) nor loads
// child_process and its dependencies (net, stream, dgram: ≈4 ms of module evaluation). The CLI's first command on a
// new state directory starts the resident helper this way on its way out (src/cli/client.ts startHelper), which
// is what keeps that command as fast as it was before there was a helper (issue #11, BENCHMARKS.md).
//
// The child gets: a new session (POSIX_SPAWN_SETSID), every signal's default disposition and an empty signal mask
// (Node ignores SIGPIPE; a posix_spawn child would inherit that), stdin from /dev/null, stdout and stderr on
// `logFd`, the working directory `cwd`, exactly `env`. Every other descriptor of Node's is close-on-exec.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

type Fn = (...a: unknown[]) => number;
let fns: Record<string, Fn> | null = null;

function load(): Record<string, Fn> {
  if (fns) return fns;
  const koffi = require('koffi') as typeof import('koffi');
  const libc = koffi.load('libc.so.6');
  const f = (sig: string) => libc.func(sig) as unknown as Fn;
  fns = {
    spawn: f('int posix_spawn(_Out_ int *pid, const char *path, void *file_actions, void *attr, const char **argv, const char **envp)'),
    faInit: f('int posix_spawn_file_actions_init(void *fa)'),
    faDestroy: f('int posix_spawn_file_actions_destroy(void *fa)'),
    faOpen: f('int posix_spawn_file_actions_addopen(void *fa, int fd, const char *path, int oflag, int mode)'),
    faDup2: f('int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)'),
    faChdir: f('int posix_spawn_file_actions_addchdir_np(void *fa, const char *path)'),
    attrInit: f('int posix_spawnattr_init(void *attr)'),
    attrDestroy: f('int posix_spawnattr_destroy(void *attr)'),
    attrFlags: f('int posix_spawnattr_setflags(void *attr, short flags)'),
    attrSigdef: f('int posix_spawnattr_setsigdefault(void *attr, const void *set)'),
    attrSigmask: f('int posix_spawnattr_setsigmask(void *attr, const void *set)'),
    sigfill: f('int sigfillset(void *set)'),
    sigempty: f('int sigemptyset(void *set)'),
  };
  return fns;
}

// glibc's flags (spawn.h).
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;

/** Starts `file` with `argv` (argv[0] included) detached from this process; returns its pid. Throws with the
 *  errno's name when the C library reports a failure (posix_spawn reports a failed exec as its return value). */
export function spawnDetached(file: string, argv: string[], env: Record<string, string>, cwd: string, logFd: number): number {
  const f = load();
  // Opaque glibc structures, larger than their real sizes (80 and 336 bytes on x86-64 and arm64; sigset_t 128).
  const fa = Buffer.alloc(256);
  const attr = Buffer.alloc(512);
  const all = Buffer.alloc(128);
  const none = Buffer.alloc(128);
  const ck = (what: string, rc: number) => {
    if (rc !== 0) throw Object.assign(new Error(`${what}: errno ${rc}`), { errno: rc });
  };
  ck('posix_spawn_file_actions_init', f.faInit(fa));
  ck('posix_spawnattr_init', f.attrInit(attr));
  try {
    ck('addopen', f.faOpen(fa, 0, '/dev/null', 0 /* O_RDONLY */, 0));
    ck('adddup2', f.faDup2(fa, logFd, 1));
    ck('adddup2', f.faDup2(fa, logFd, 2));
    ck('addchdir', f.faChdir(fa, cwd));
    f.sigfill(all);
    f.sigempty(none);
    ck('setsigdefault', f.attrSigdef(attr, all));
    ck('setsigmask', f.attrSigmask(attr, none));
    ck('setflags', f.attrFlags(attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK));
    const pid = [0];
    const envp = [...Object.entries(env).map(([k, v]) => `${k}=${v}`), null];
    ck(`posix_spawn ${file}`, f.spawn(pid, file, fa, attr, [...argv, null], envp));
    return pid[0];
  } finally {
    f.faDestroy(fa);
    f.attrDestroy(attr);
  }
}
