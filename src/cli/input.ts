// A command's standard input, whole. In-process it is this process's own stdin; served by the resident helper it is
// what the fast client read from its stdin and sent with the request (only `nsnet cni` reads its input: a CNI
// runtime writes the network configuration there).
import fs from 'node:fs';

let requestInput: Buffer | null = null;

/** Set by the helper for the duration of one request (null: none). */
export function setRequestInput(b: Buffer | null): void {
  requestInput = b;
}

export function readInput(): Buffer {
  return requestInput ?? fs.readFileSync(0);
}
