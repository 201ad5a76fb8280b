// Errors meant for the user: bad input or a refused operation. The CLI prints `Error: <message>` and exits non-zero.

export type UserErrorCode = 'invalid' | 'notfound' | 'conflict' | 'refused';

/** Exit status per code: bad input is a usage error (2, like the CLI's own argument errors); the rest exit 1. */
const EXIT_CODES: Record<UserErrorCode, number> = { invalid: 2, notfound: 1, conflict: 1, refused: 1 };

/**
 * An error whose message is one line written for the user (Docker's wording where Docker has one).
 * `code`: 'invalid' = bad input, 'notfound' = no such object, 'conflict' = clashes with something that exists,
 * 'refused' = a valid request the current state does not allow.
 */
export class UserError extends Error {
  readonly code: UserErrorCode;

  constructor(message: string, code: UserErrorCode = 'invalid') {
    super(message);
    this.name = 'UserError';
    this.code = code;
  }

  /** Process exit status the CLI should use. */
  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
}

const PLAIN = /^[\x21-\x7e]{1,80}$/;
const MAX_SHOWN = 64;

/**
 * A user-supplied value as it should appear inside an error message: printable ASCII without spaces is shown
 * as is (Docker style, `invalid subnet 10.0.0.0/33: ...`); anything else (empty, spaces, control characters,
 * unicode, very long) is JSON-quoted and truncated, so the message stays one readable line.
 */
export function showValue(v: unknown): string {
  const s = typeof v === 'string' ? v : String(v);
  if (PLAIN.test(s) && !s.includes('"')) return s;
  return s.length > MAX_SHOWN ? `${quote(s.slice(0, MAX_SHOWN))}... (${s.length} characters)` : quote(s);
}

/** JSON quoting, plus escapes for the invisible characters JSON leaves alone (C1 controls, zero-width and
 *  bidirectional formatting characters, line/paragraph separators) so nothing in a message can hide or reorder text. */
function quote(s: string): string {
  return JSON.stringify(s).replace(/[\u0080-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
