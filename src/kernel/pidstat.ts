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
