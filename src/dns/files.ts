// The resolver's files under <root>/dns/ (view.json, view.json.delta, view.json.loaded, pid, resolver.pid, log),
// written by root (the engine and the resolver) in a directory another user might have planted things in: never
// follow a symlink, never open a FIFO or device, never write through a file somebody else made.
//   - whole files are written aside (a fresh O_EXCL|O_NOFOLLOW temporary next to them) and renamed into place:
//     atomic for readers, and rename replaces a symlink at the name itself, never what it points to;
//   - appended files and read files are opened with O_NOFOLLOW (ELOOP on a symlink) and O_NONBLOCK (a FIFO
//     cannot block us), then must be regular files.
// Node built-ins only: the resolver process imports this too.
import crypto from 'node:crypto';
import fs from 'node:fs';

const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_APPEND, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

function mustBeRegular(fd: number, file: string): fs.Stats {
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw new Error(`${file}: not a regular file`);
  }
  return st;
}

/** Replaces `file` with `data` atomically, with `mode` (not subject to the umask). */
export function writeFileAtomic(file: string, data: string | Buffer, mode: number): void {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, mode);
  try {
    fs.fchmodSync(fd, mode);
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      /* closed above */
    }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** Opens `file` for appending (created with `mode`; an existing one is set to `mode`). Returns the fd. */
export function openAppend(file: string, mode: number): number {
  const fd = fs.openSync(file, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK, mode);
  mustBeRegular(fd, file);
  fs.fchmodSync(fd, mode);
  return fd;
}

/** Appends `text` to `file` (see openAppend). */
export function appendFileSafe(file: string, text: string, mode: number): void {
  const fd = openAppend(file, mode);
  try {
    fs.writeSync(fd, text);
  } finally {
    fs.closeSync(fd);
  }
}

/** Opens `file` for reading, not through a symlink, a regular file only. Throws as open(2) does (ENOENT...). */
export function openRead(file: string): number {
  const fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  mustBeRegular(fd, file);
  return fd;
}

/** The whole of `file` as UTF-8 (see openRead). */
export function readFileSafe(file: string): string {
  const fd = openRead(file);
  try {
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** Creates directory `dir` (mode 0700) or checks the one there: a real directory, not a symlink. */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory (a symlink or a file is in its place): remove it`);
}
