// Fault injection for the crash-safety tests: NSNET_CRASH_AT=<point> makes nsnet kill itself with SIGKILL when
// it reaches that named point, exactly as `kill -9` would. Test-only; costs one string compare otherwise.
const target = process.env.NSNET_CRASH_AT ?? '';

/** Every point an operation passes, in order; the fault suite walks through all of them. */
export const CRASH_POINTS = new Set<string>();

export function crashPoint(name: string): void {
  if (target && target === name) process.kill(process.pid, 'SIGKILL');
  if (process.env.NSNET_TRACE_POINTS) process.stderr.write(`crashpoint ${name}\n`);
}
