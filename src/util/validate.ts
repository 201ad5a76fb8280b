// Validators for user-supplied names and values. Pure. Each throws UserError(..., 'invalid') naming the value.
import { UserError, showValue } from './errors.js';

/** Docker's name rule (container names; nsnet applies it to network names too). */
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const MAX_NAME_LENGTH = 64;
/** Networks that always exist (or are modes, not networks) and so cannot be created by the user. */
export const RESERVED_NETWORK_NAMES: readonly string[] = ['bridge', 'host', 'none'];

function fail(message: string): never {
  throw new UserError(message, 'invalid');
}

/**
 * A name for a user-defined network: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 64 characters, not one of the
 * predefined `bridge`, `host`, `none`, and not `container:NAME` (a network mode of `run`, not a network).
 */
export function validateNetworkName(name: string): void {
  if (typeof name !== 'string' || name === '') fail('network name must not be empty');
  if (name.startsWith('container:')) {
    fail(`invalid network name ${showValue(name)}: "container:NAME" is a network mode of run, not a network name`);
  }
  if (!NAME_RE.test(name)) {
    fail(`invalid network name ${showValue(name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  if (name.length > MAX_NAME_LENGTH) {
    fail(`invalid network name ${showValue(name)}: longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (RESERVED_NETWORK_NAMES.includes(name)) fail(`network name ${name} is reserved (a predefined network)`);
}

/**
 * A container name, Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (so never '/', '.', '..' or a leading '-': it is
 * also a file name under /run/netns), at most 64 characters.
 */
export function validateContainerName(name: string): void {
  if (typeof name !== 'string' || name === '') fail('container name must not be empty');
  if (!NAME_RE.test(name)) {
    fail(`Invalid container name (${showValue(name)}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  if (name.length > MAX_NAME_LENGTH) {
    fail(`Invalid container name (${showValue(name)}), longer than ${MAX_NAME_LENGTH} characters`);
  }
}

/** Linux IFNAMSIZ (16) minus the terminating NUL. */
export const MAX_IFNAME_BYTES = 15;

/**
 * A Linux network interface name (the kernel's dev_valid_name): 1..15 bytes, not '.' or '..', no '/', ':' or
 * whitespace. nsnet is stricter: printable ASCII only, and no '%' (the kernel expands "name%d" templates).
 */
export function validateIfName(name: string): void {
  if (typeof name !== 'string' || name === '') fail('invalid interface name "": must not be empty');
  const bad = (why: string) => fail(`invalid interface name ${showValue(name)}: ${why}`);
  if (Buffer.byteLength(name, 'utf8') > MAX_IFNAME_BYTES) bad(`longer than ${MAX_IFNAME_BYTES} bytes`);
  if (name === '.' || name === '..') bad('"." and ".." are not interface names');
  if (/\s/.test(name)) bad('must not contain whitespace');
  if (name.includes('/')) bad("must not contain '/'");
  if (name.includes(':')) bad("must not contain ':'");
  if (name.includes('%')) bad("must not contain '%'");
  if (!/^[\x21-\x7e]+$/.test(name)) bad('only printable ASCII characters are allowed');
}

const LABEL_RE = /^[A-Za-z0-9_-]{1,63}$/;
export const MAX_DNS_NAME = 253;

/**
 * A network-scoped alias (a DNS name the embedded resolver answers): dot-separated labels of [A-Za-z0-9_-],
 * each 1..63 characters, 253 characters in all.
 */
export function validateAlias(alias: string): void {
  if (typeof alias !== 'string' || alias === '') fail('invalid alias "": must not be empty');
  const bad = (why: string) => fail(`invalid alias ${showValue(alias)}: ${why}`);
  if (alias.length > MAX_DNS_NAME) bad(`longer than ${MAX_DNS_NAME} characters`);
  for (const label of alias.split('.')) {
    if (label === '') bad('empty label (leading, trailing or doubled dot)');
    if (label.length > 63) bad('a label is longer than 63 characters');
    if (!LABEL_RE.test(label)) bad('only letters, digits, "_" and "-" are allowed in each dot-separated label');
    if (label.startsWith('-') || label.endsWith('-')) bad('a label cannot start or end with "-"');
  }
}

export const MAX_LABEL_KEY = 255;
export const MAX_LABEL_VALUE = 4096;

/**
 * A label `key=value` (as given to --label). The key is non-empty printable ASCII without spaces or '=';
 * the value may be empty and may contain '=' and spaces, but no control characters (it is printed in tables).
 * Returns [key, value]. A bare `key` (no '=') is accepted as `key=` like Docker does.
 */
export function validateLabel(label: string): [string, string] {
  if (typeof label !== 'string' || label === '') fail('invalid label "": expected key=value');
  const eq = label.indexOf('=');
  const key = eq < 0 ? label : label.slice(0, eq);
  const value = eq < 0 ? '' : label.slice(eq + 1);
  const bad = (why: string) => fail(`invalid label ${showValue(label)}: ${why}`);
  if (key === '') bad('the key is empty');
  if (key.length > MAX_LABEL_KEY) bad(`the key is longer than ${MAX_LABEL_KEY} characters`);
  if (!/^[\x21-\x7e]+$/.test(key)) bad('the key must be printable ASCII without spaces');
  if (value.length > MAX_LABEL_VALUE) bad(`the value is longer than ${MAX_LABEL_VALUE} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f\u2028\u2029]/.test(value)) bad('the value must not contain control characters or line breaks');
  return [key, value];
}

export const MIN_MTU = 68;
export const MAX_MTU = 65535;

/** An MTU (decimal integer 68..65535, as a string from --opt or a number). Returns it as a number. */
export function validateMtu(mtu: string | number): number {
  const s = typeof mtu === 'number' ? String(mtu) : mtu;
  const msg = `invalid MTU ${showValue(s)}: must be an integer from ${MIN_MTU} to ${MAX_MTU}`;
  if (typeof s !== 'string' || !/^[0-9]{1,5}$/.test(s)) fail(msg);
  const n = Number(s);
  if (n < MIN_MTU || n > MAX_MTU) fail(msg);
  return n;
}

const SAFE_NAME_RE = /^[A-Za-z0-9_.-]{1,255}$/;

/** A name read back from the store (a netns name, a container id...) that is about to become one path component:
 *  `[A-Za-z0-9_.-]`, 1..255 characters, not `.` or `..`. The store is nsnet's own, but a damaged or edited row
 *  must never make root touch a path outside the directory meant (`../../etc/x`). */
export function isSafeName(name: unknown): name is string {
  return typeof name === 'string' && SAFE_NAME_RE.test(name) && name !== '.' && name !== '..';
}

/** Throws (an Error naming the value and where it came from) unless `isSafeName(name)`. */
export function assertSafeName(what: string, name: unknown): asserts name is string {
  if (!isSafeName(name)) {
    throw new Error(`refusing to use ${what} ${showValue(String(name))} as a file name: only [A-Za-z0-9_.-] are allowed, and not "." or ".." (a damaged store? run nsnet check)`);
  }
}
