// The CLI's own standard output and error, written with write(2) on descriptors 1 and 2: what process.stdout and
// process.stderr do on Linux for files, pipes and terminals alike (synchronously), without creating those
// streams, which load node:stream (and node:net for a pipe, node:tty for a terminal): ≈3-4 ms of every in-process
// start (CPU profile of a first `nsnet ps`, issue #11). Bytes and order are the same; a child process writing to
// the same descriptor interleaves exactly as before.
//   EPIPE   the reader went away (`nsnet inspect X | head -1`): the rest of this descriptor's output is dropped
//           and the command goes on to its end, as main.ts's stream handlers did.
//   EAGAIN  a non-blocking descriptor (shared with a parent that set O_NONBLOCK) is full: this write and every
//           later one on it go through the stream, which waits until the reader takes them.
import fs from 'node:fs';

const gone = [false, false, false];
const viaStream = [false, false, false];

/** Drops EPIPE on a standard stream (see above); any other error stays fatal. */
export function ignoreEpipe(s: NodeJS.WriteStream): void {
  s.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
}

/** Writes all of `s` (UTF-8) to descriptor 1 or 2. */
export function writeStd(fd: 1 | 2, s: string | Uint8Array): void {
  if (gone[fd]) return;
  if (viaStream[fd]) {
    (fd === 1 ? process.stdout : process.stderr).write(s);
    return;
  }
  let b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  while (b.length > 0) {
    try {
      b = b.subarray(fs.writeSync(fd, b));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') {
        gone[fd] = true;
        return;
      }
      if (code !== 'EAGAIN') throw e;
      viaStream[fd] = true;
      const stream = fd === 1 ? process.stdout : process.stderr;
      ignoreEpipe(stream);
      stream.write(b);
      return;
    }
  }
}
