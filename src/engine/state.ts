// Container run state: whether the process nsnet started is still the one running, and its exit code.
import fs from 'node:fs';
import path from 'node:path';
import { isAlive } from '../kernel/proc.js';
import type { ContainerRecord } from '../types.js';
import type { Host } from './host.js';

export function exitFile(h: Host, c: ContainerRecord): string {
  return path.join(h.containerDir(c.id), 'exitcode');
}

export function logFile(h: Host, c: ContainerRecord): string {
  return path.join(h.containerDir(c.id), 'log');
}

/** The detached command's stderr (its stdout is in logFile; the supervisor's own messages too). */
export function errLogFile(h: Host, c: ContainerRecord): string {
  return path.join(h.containerDir(c.id), 'log.err');
}

/** Brings the stored state up to date with reality (a detached process may have ended since). */
/** True when the store says running but the container's process is gone. A CNI container's processes are its
 *  runtime's, not nsnet's (src/engine/cni-state.ts): it is up while attached. */
export function hasEnded(c: ContainerRecord): boolean {
  return c.state === 'running' && c.command[0] !== '<cni>' && !isAlive(c.pid, c.pidStart);
}

export function refreshState(h: Host, c: ContainerRecord): ContainerRecord {
  if (!hasEnded(c)) return c;
  let code: number | null = null;
  let finished = new Date().toISOString();
  try {
    code = Number(fs.readFileSync(exitFile(h, c), 'utf8').trim());
    // The supervisor wrote the file when the command ended: that is when it finished, not now.
    finished = fs.statSync(exitFile(h, c)).mtime.toISOString();
  } catch {
    /* killed before it could record one */
  }
  const upd = { state: 'exited' as const, exitCode: code ?? 137, finished, pid: null, pidStart: null };
  try {
    h.store.tx(() => h.store.updateContainer(c.id, upd));
  } catch {
    /* read-only use: show it anyway */
  }
  return { ...c, ...upd };
}

