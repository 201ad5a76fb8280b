import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/util/errors.js';
import {
  assertSafeName, isSafeName, validateAlias, validateContainerName, validateIfName, validateLabel, validateMtu, validateNetworkName,
} from '../../src/util/validate.js';

function throwsUser(fn: () => unknown, msg: string, label = msg): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `${label}: expected UserError, got ${String(e)}`);
    assert.ok(e.message.includes(msg), `${label}: message ${JSON.stringify(e.message)} lacks ${JSON.stringify(msg)}`);
    assert.equal(e.code, 'invalid');
    assert.ok(!/[\n\r\u2028\u2029]/.test(e.message), 'message must be one line');
    return true;
  }, label);
}

const GOOD_NAMES = ['a', 'A', '0', 'oa-net', 'my_net.1', 'web1', 'a..b', 'a.', 'a-', 'a_', '9lives', 'x'.repeat(64), 'Bridge', 'HOST', 'bridge0', 'none-1'];

test('validateNetworkName accepts Docker-style names', () => {
  for (const n of GOOD_NAMES) assert.doesNotThrow(() => validateNetworkName(n), n);
});

test('validateNetworkName refuses bad, hostile and reserved names', () => {
  const cases: Array<[string, string]> = [
    ['', 'network name must not be empty'],
    [' ', 'invalid network name " ": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed'],
    [' net', 'invalid network name " net"'],
    ['net ', 'invalid network name "net "'],
    ['a b', 'invalid network name "a b"'],
    ['-net', 'invalid network name -net'],
    ['.net', 'invalid network name .net'],
    ['_net', 'invalid network name _net'],
    ['.', 'invalid network name .'],
    ['..', 'invalid network name ..'],
    ['../x', 'invalid network name ../x'],
    ['a/b', 'invalid network name a/b'],
    ['/abs', 'invalid network name /abs'],
    ['a\\b', 'invalid network name a\\b'],
    ['net\n', 'invalid network name "net\\n"'],
    ['net\u0000', 'invalid network name "net\\u0000"'],
    ['réseau', 'invalid network name "réseau"'],
    ['网络', 'invalid network name "网络"'],
    ['ｎｅｔ', 'invalid network name "ｎｅｔ"'],
    ['a:b', 'invalid network name a:b'],
    ['a*', 'invalid network name a*'],
    ['$(id)', 'invalid network name $(id)'],
    ['x'.repeat(65), 'longer than 64 characters'],
    ['x'.repeat(100000), '(100000 characters)'],
    ['container:web', '"container:NAME" is a network mode of run, not a network name'],
    ['container:', '"container:NAME" is a network mode'],
    ['bridge', 'network name bridge is reserved'],
    ['host', 'network name host is reserved'],
    ['none', 'network name none is reserved'],
  ];
  for (const [n, msg] of cases) throwsUser(() => validateNetworkName(n), msg, JSON.stringify(n).slice(0, 40));
});

test('validateContainerName accepts Docker-style names, including the reserved network names', () => {
  for (const n of [...GOOD_NAMES, 'bridge', 'host', 'none']) assert.doesNotThrow(() => validateContainerName(n), n);
});

test('validateContainerName refuses names unusable as /run/netns file names', () => {
  const cases: Array<[string, string]> = [
    ['', 'container name must not be empty'],
    ['.', 'Invalid container name (.), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed'],
    ['..', 'Invalid container name (..)'],
    ['../x', 'Invalid container name (../x)'],
    ['../../etc/passwd', 'Invalid container name (../../etc/passwd)'],
    ['a/b', 'Invalid container name (a/b)'],
    ['/web', 'Invalid container name (/web)'],
    ['-rf', 'Invalid container name (-rf)'],
    ['--help', 'Invalid container name (--help)'],
    ['web 1', 'Invalid container name ("web 1")'],
    ['web\t', 'Invalid container name ("web\\t")'],
    ['web\r\n', 'Invalid container name ("web\\r\\n")'],
    ['wéb', 'Invalid container name ("wéb")'],
    ['web\u202e', 'Invalid container name ("web\\u202e")'],
    ['container:x', 'Invalid container name (container:x)'],
    ['x'.repeat(65), 'longer than 64 characters'],
  ];
  for (const [n, msg] of cases) throwsUser(() => validateContainerName(n), msg, JSON.stringify(n));
});

test('validateIfName accepts kernel-valid names', () => {
  for (const n of ['eth0', 'nsnet0', 'br-0123456789', 'a', 'x'.repeat(15), 'veth.100', 'my_br-1', 'a..', '.a', '..a', 'BR0', 'a@b', 'a+b']) {
    assert.doesNotThrow(() => validateIfName(n), n);
  }
});

test('validateIfName refuses what dev_valid_name refuses, and more', () => {
  const cases: Array<[string, string]> = [
    ['', 'invalid interface name "": must not be empty'],
    ['x'.repeat(16), 'longer than 15 bytes'],
    ['éééééééé', 'longer than 15 bytes'], // 8 characters, 16 bytes
    ['.', '"." and ".." are not interface names'],
    ['..', '"." and ".." are not interface names'],
    ['a/b', "invalid interface name a/b: must not contain '/'"],
    ['../x', "must not contain '/'"],
    ['a:b', "invalid interface name a:b: must not contain ':'"],
    ['eth0:1', "must not contain ':'"],
    ['a b', 'invalid interface name "a b": must not contain whitespace'],
    [' ', 'must not contain whitespace'],
    ['eth0\n', 'must not contain whitespace'],
    ['eth\t0', 'must not contain whitespace'],
    ['eth\u00a00', 'must not contain whitespace'],
    ['eth%d', "invalid interface name eth%d: must not contain '%'"],
    ['é', 'invalid interface name "é": only printable ASCII characters are allowed'],
    ['eth\u0000', 'only printable ASCII'],
    ['eth\u007f', 'only printable ASCII'],
  ];
  for (const [n, msg] of cases) throwsUser(() => validateIfName(n), msg, JSON.stringify(n));
});

test('validateAlias accepts DNS names', () => {
  const max = [63, 63, 63, 61].map((n) => 'a'.repeat(n)).join('.');
  assert.equal(max.length, 253);
  for (const a of ['web', 'db-1', 'my_db', 'a.b.c', 'WEB', '1', '1.2.3.4', '_srv', 'x'.repeat(63), max]) {
    assert.doesNotThrow(() => validateAlias(a), a);
  }
});

test('validateAlias refuses bad labels and names', () => {
  const tooLong = [63, 63, 63, 62].map((n) => 'a'.repeat(n)).join('.');
  const cases: Array<[string, string]> = [
    ['', 'invalid alias "": must not be empty'],
    ['.', 'invalid alias .: empty label'],
    ['web.', 'invalid alias web.: empty label'],
    ['.web', 'empty label'],
    ['a..b', 'empty label'],
    ['x'.repeat(64), 'a label is longer than 63 characters'],
    [tooLong, 'longer than 253 characters'],
    ['a b', 'invalid alias "a b": only letters, digits, "_" and "-" are allowed'],
    ['web/1', 'invalid alias web/1: only letters'],
    ['../x', 'empty label'],
    ['wéb', 'invalid alias "wéb": only letters'],
    ['web*', 'only letters'],
    ['web:80', 'only letters'],
    ['web\n', 'only letters'],
  ];
  for (const [a, msg] of cases) throwsUser(() => validateAlias(a), msg, JSON.stringify(a).slice(0, 40));
});

test('validateLabel splits and accepts sane labels', () => {
  const cases: Array<[string, [string, string]]> = [
    ['k=v', ['k', 'v']],
    ['com.example.team=net ops', ['com.example.team', 'net ops']],
    ['k=', ['k', '']],
    ['k', ['k', '']],
    ['k=a=b', ['k', 'a=b']],
    ['k=é✓', ['k', 'é✓']],
    ['k=' + 'v'.repeat(4096), ['k', 'v'.repeat(4096)]],
  ];
  for (const [s, want] of cases) assert.deepEqual(validateLabel(s), want, s.slice(0, 30));
});

test('validateLabel refuses bad keys and values', () => {
  const cases: Array<[string, string]> = [
    ['', 'invalid label "": expected key=value'],
    ['=v', 'invalid label =v: the key is empty'],
    ['=', 'the key is empty'],
    ['a b=c', 'invalid label "a b=c": the key must be printable ASCII without spaces'],
    [' k=v', 'the key must be printable ASCII'],
    ['ké=v', 'the key must be printable ASCII'],
    ['k\n=v', 'the key must be printable ASCII'],
    ['k'.repeat(256) + '=v', 'the key is longer than 255 characters'],
    ['k=' + 'v'.repeat(4097), 'the value is longer than 4096 characters'],
    ['k=a\nb', 'invalid label "k=a\\nb": the value must not contain control characters or line breaks'],
    ['k=a\rb', 'the value must not contain control characters'],
    ['k=a\u0000', 'the value must not contain control characters'],
    ['k=\u001b[31mred', 'the value must not contain control characters'],
    ['k=a\u2028b', 'line breaks'],
  ];
  for (const [s, msg] of cases) throwsUser(() => validateLabel(s), msg, JSON.stringify(s).slice(0, 40));
});

test('validateMtu accepts 68..65535 as number or decimal string', () => {
  const cases: Array<[string | number, number]> = [['68', 68], ['1500', 1500], ['9000', 9000], ['65535', 65535], [1280, 1280], ['01500', 1500]];
  for (const [v, want] of cases) assert.equal(validateMtu(v), want, String(v));
});

test('validateMtu refuses everything else', () => {
  const bad: Array<string | number> = ['', ' ', '67', '0', '-1', '65536', '100000', '1500.0', '1e3', '0x5dc', ' 1500', '1500 ', '+1500',
    'abc', 'NaN', 'Infinity', '１５００', 67, 65536, 1500.5, -1500, NaN, Infinity];
  for (const v of bad) throwsUser(() => validateMtu(v), 'must be an integer from 68 to 65535', JSON.stringify(v));
  throwsUser(() => validateMtu('abc'), 'invalid MTU abc: must be');
  throwsUser(() => validateMtu(''), 'invalid MTU "": must be');
});

test('isSafeName / assertSafeName: names from the store that become one path component', () => {
  for (const ok of ['a', 'nsnet-abc123-web', 'x.y_z-1', 'a'.repeat(255), '0'.repeat(64), '..a', 'a..']) assert.ok(isSafeName(ok), ok);
  for (const bad of ['', '.', '..', '../../etc/passwd', 'a/b', '/abs', 'a\nb', 'a b', 'é', 'a'.repeat(256), 'x\0y']) {
    assert.ok(!isSafeName(bad), JSON.stringify(bad));
    assert.throws(() => assertSafeName('network namespace name', bad), /refusing to use network namespace name .* as a file name/);
  }
  assert.ok(!isSafeName(null) && !isSafeName(7));
});
