// Identifying a process despite PID reuse: its start time (field 22 of /proc/PID/stat). Node built-ins only (the
// CLI's thin client uses it too).
import fs from 'node:fs';

/** Start time of `pid` (clock ticks since boot), or null if it does not exist or is a zombie. */
export function processStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return null;
    return rest[19];
  } catch {
    return null;
  }
}

/** True if `pid` is still the process we started (same start time), not a recycled PID. */
export function isAlive(pid: number | null, start: string | null): boolean {
  if (!pid) return false;
  const s = processStart(pid);
  return s !== null && (start === null || start === '' || s === start);
}

/** Wall-clock time at which a process with start time `start` (processStart) began: the boot time (btime of
 *  /proc/stat) plus its ticks at USER_HZ, which is 100 on every Linux architecture nsnet runs on. */
export function startDate(start: string): Date | null {
  try {
    const btime = /^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'));
    return btime && /^\d+$/.test(start) ? new Date(Number(btime[1]) * 1000 + Number(start) * 10) : null;
  } catch {
    return null;
  }
}
