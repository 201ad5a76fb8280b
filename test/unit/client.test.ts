// Which command lines the CLI's thin client hands to the resident helper (src/cli/client.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { helperPlan, servedCommand } from '../../src/cli/client.js';

test('served: short non-interactive commands, with or without global options', () => {
  for (const args of [
    ['create', '--network', 'n', '--name', 'a', '--', 'sleep', '1'],
    ['rm', '-f', 'a', 'b'],
    ['start', 'a'],
    ['ps', '-a'],
    ['inspect', 'a'],
    ['port', 'a'],
    ['network', 'create', '--subnet', '10.0.0.0/24', 'n'],
    ['network', 'rm', 'n'],
    ['network', 'ls'],
    ['network', 'connect', 'n', 'a'],
    ['--root', '/x', 'create', '--', 'true'],
    ['--root=/x', '--host-netns', '/run/netns/h', 'rm', 'a'],
    ['create', '--', 'cmd', '--help'], // --help of the container's command, not nsnet's
    ['run', '-d', '--name', 'a', '--', 'sleep', '1'],
    ['run', '--name', 'a', '--detach', '--rm', '-p', '80', '--', 'sleep', '1'],
  ]) assert.equal(servedCommand(args), true, args.join(' '));
});

test('not served: terminal-attached, long-waiting, repair, help and unknown command lines', () => {
  for (const args of [
    [], ['run', '--', 'sh'], ['run', '-d', 'sleep', '1'], ['run', '--name', 'a', '--', 'sh', '-d'], ['exec', 'a', '--', 'sh'], ['logs', 'a'], ['stop', 'a'],
    ['reconcile'], ['check'], ['help'], ['--help'], ['-h'], ['--version'], ['create', '--help'], ['network', 'ls', '-h'],
    ['network'], ['network', 'bogus'], ['bogus'], ['--unknown', 'ps'], ['--root'], ['--nsnet-helper', '/x'],
  ]) assert.equal(servedCommand(args), false, args.join(' '));
});

test('plan: refused by the environment, an empty root or host netns, or a state directory that does not exist yet', () => {
  const bundle = new URL(import.meta.url).pathname; // any existing file stands for the bundle
  const base = { NSNET_ROOT: '/' };
  assert.ok(helperPlan(['ps'], base, bundle), 'served');
  for (const k of ['NSNET_NO_HELPER', 'NSNET_CRASH_AT', 'NSNET_TRACE_POINTS']) {
    assert.equal(helperPlan(['ps'], { ...base, [k]: '1' }, bundle), null, k);
  }
  assert.equal(helperPlan(['ps'], { NSNET_ROOT: '' }, bundle), null);
  assert.equal(helperPlan(['ps'], { ...base, NSNET_HOST_NETNS: '' }, bundle), null);
  assert.equal(helperPlan(['ps'], { NSNET_ROOT: '/nonexistent/nsnet-root' }, bundle), null);
  assert.equal(helperPlan(['run', '--', 'sh'], base, bundle), null);
  const p = helperPlan(['--root', '/', 'ps'], {}, bundle)!;
  assert.match(p.socket, /^\/helper\/\d+-\d+-[0-9a-z]+\.sock$/, 'keyed by host netns, mount namespace and build');
  assert.equal(helperPlan(['--host-netns', '/run/netns/none-such', 'ps'], base, bundle), null, 'unknown host netns: in-process (which reports it)');
});

test('protocol: a request decodes as the fast client encodes it; a launch encodes every field NUL-terminated', async () => {
  const { parseRequest, launchPayload } = await import('../../src/cli/helper.js');
  const q = Buffer.from(['nsnet1', '/tmp', '3', '--root', '/x', 'ps', 'A=1', 'B=x=y', 'A=2', 'NOEQUALS', ''].join('\0'));
  assert.deepEqual(parseRequest(q), { argv: ['--root', '/x', 'ps'], cwd: '/tmp', env: { A: '1', B: 'x=y' } });
  for (const bad of [['nsnet0', '/', '0'], ['nsnet1', 'relative', '0'], ['nsnet1', '/', '5', 'a'], ['nsnet1', '/', '-1']]) {
    assert.equal(parseRequest(Buffer.from(bad.join('\0'))), null, bad.join(' '));
  }
  const l = launchPayload({ argv: ['/bin/sh', '-c', 'x'], env: { K: 'v', U: undefined }, cwd: undefined, log: '/l' }, '');
  assert.equal(l.toString(), ['', '/l', '', '3', '/bin/sh', '-c', 'x', 'K=v', ''].join('\0'));
});
