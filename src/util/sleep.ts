// A synchronous pause for the engine's few waits (a resolver's acknowledgement, a process ending, SQLITE_BUSY): the
// engine is synchronous, and Atomics.wait on a private buffer blocks this thread only, with no busy loop.
const cell = new Int32Array(new SharedArrayBuffer(4));

export function sleepSync(ms: number): void {
  Atomics.wait(cell, 0, 0, ms);
}
