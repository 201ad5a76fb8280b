// Shared assertion of the unit tests: `fn` throws one UserError with `code`, on one line, whose message contains
// `msg` (the project's rule for bad input: one clear error line).
import assert from 'node:assert/strict';
import { UserError } from '../../src/util/errors.js';

export function throwsUser(fn: () => unknown, msg: string, code: UserError['code'] = 'invalid', label = msg): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `${label}: expected UserError, got ${String(e)}`);
    assert.ok(e.message.includes(msg), `${label}: message ${JSON.stringify(e.message)} lacks ${JSON.stringify(msg)}`);
    assert.equal(e.code, code, label);
    assert.ok(!/[\n\r\u2028\u2029]/.test(e.message), 'message must be one line');
    return true;
  }, label);
}
