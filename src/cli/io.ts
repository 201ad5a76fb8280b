// A command's standard streams, environment, input and exit status: given to each command line by whoever runs it,
// never taken from (or patched into) the process's own globals. In-process they are this process's stdout, stderr,
// environment and stdin; served by the resident helper (src/cli/helper.ts) they are the client's: output relayed
// over its socket as it is written, its environment, the stdin it sent. One command runs at a time in a process
// (the helper serves one request at a time), so the current one is a module variable set for its duration.
import fs from 'node:fs';
import { writeStd } from './stdio.js';

export interface CommandIO {
  out(s: string | Uint8Array): void;
  err(s: string | Uint8Array): void;
  /** The command's environment (NSNET_ROOT, NSNET_DEBUG, PATH, CNI_* ...). */
  readonly env: NodeJS.ProcessEnv;
  /** The command's standard input, whole (read on first use). */
  input(): Buffer;
  /** Exit status so far (process.exitCode's role). */
  status: number;
}

/** This process's own streams and environment. */
export function processIO(): CommandIO {
  return {
    // write(2), not process.stdout/stderr (src/cli/stdio.ts: the same bytes, without loading the stream modules).
    out: (s) => writeStd(1, s),
    err: (s) => writeStd(2, s),
    env: process.env,
    input: () => fs.readFileSync(0),
    status: 0,
  };
}

let current: CommandIO | null = null;

/** The running command's IO (this process's own outside a command). */
export function io(): CommandIO {
  return (current ??= processIO());
}

/** Runs `fn` with `c` as the command's IO; returns its exit status. */
export async function withIO(c: CommandIO, fn: () => Promise<void>): Promise<number> {
  const prev = current;
  current = c;
  try {
    await fn();
    return c.status;
  } finally {
    current = prev;
  }
}
