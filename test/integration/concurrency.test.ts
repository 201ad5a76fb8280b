// 50 concurrent CLI invocations on one network (run/rm/connect/disconnect mixed): all succeed or fail cleanly,
// no address is handed out twice, and the state is consistent afterwards.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { NSNET, TestHost, type Result } from '../helpers/host.js';

function nsnetAsync(h: TestHost, args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const p = spawn('nsenter', [`--net=/run/netns/${h.ns}`, NSNET, ...args], { env: { ...process.env, NSNET_ROOT: h.root } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ status: code ?? 128, stdout, stderr }));
  });
}

async function wave(h: TestHost, cmds: string[][]): Promise<Result[]> {
  const rs = await Promise.all(cmds.map((c) => nsnetAsync(h, c)));
  rs.forEach((r, i) => {
    if (r.status !== 0) {
      // A clean failure: exactly one error line, no stack trace.
      assert.match(r.stderr, /^Error: [^\n]+\n$/, `${cmds[i].join(' ')}: ${r.stderr}`);
    }
  });
  return rs;
}

function consistent(h: TestHost): void {
  const chk = h.nsnet(['check']);
  assert.equal(chk.status, 0, chk.stdout + chk.stderr);
  const ips: string[] = [];
  for (const id of h.ok(['ps', '-a', '-q']).split('\n').filter(Boolean)) {
    const c = JSON.parse(h.ok(['inspect', id]))[0];
    for (const n of Object.values(c.NetworkSettings.Networks) as Array<{ IPAddress: string }>) ips.push(n.IPAddress);
  }
  assert.equal(new Set(ips).size, ips.length, `no address handed out twice: ${ips.join(' ')}`);
}

test('50 concurrent invocations: run, then rm/connect/run mixed, then disconnect/rm', async (t) => {
  const h = TestHost.create('conc');
  t.after(() => h.cleanup());
  h.ok(['network', 'create', '--subnet', '10.50.0.0/24', 'n1']);
  h.ok(['network', 'create', '--subnet', '10.51.0.0/24', 'n2']);

  const runs = Array.from({ length: 50 }, (_, i) => ['run', '-d', '--name', `c${i}`, '--network', 'n1', '--', 'sleep', '300']);
  const r1 = await wave(h, runs);
  assert.equal(r1.filter((r) => r.status === 0).length, 50, 'all 50 runs succeed');
  consistent(h);

  const mixed = [
    ...Array.from({ length: 20 }, (_, i) => ['rm', '-f', `c${i}`]),
    ...Array.from({ length: 15 }, (_, i) => ['network', 'connect', 'n2', `c${20 + i}`]),
    ...Array.from({ length: 15 }, (_, i) => ['run', '-d', '--name', `d${i}`, '--network', 'n1', '--', 'sleep', '300']),
  ];
  const r2 = await wave(h, mixed);
  assert.equal(r2.filter((r) => r.status === 0).length, 50, r2.filter((r) => r.status !== 0).map((r) => r.stderr).join(''));
  consistent(h);

  // Conflicting requests: the same name and the same static address from many invocations at once.
  const clash = Array.from({ length: 10 }, () => ['run', '-d', '--name', 'same', '--network', 'n2', '--ip', '10.51.0.200', '--', 'sleep', '300']);
  const r3 = await wave(h, clash);
  assert.equal(r3.filter((r) => r.status === 0).length, 1, 'exactly one wins');
  consistent(h);

  const down = [
    ...Array.from({ length: 15 }, (_, i) => ['network', 'disconnect', 'n2', `c${20 + i}`]),
    ...Array.from({ length: 30 }, (_, i) => ['rm', '-f', `c${20 + i}`]),
    ...Array.from({ length: 5 }, (_, i) => ['rm', '-f', `d${i}`]),
  ];
  await wave(h, down);
  consistent(h);
  const left = h.ok(['ps', '-a', '--format', 'json']).split('\n').filter(Boolean).map((l) => JSON.parse(l).Names).sort();
  assert.deepEqual(left, [...Array.from({ length: 10 }, (_, i) => `d${i + 5}`), 'same'].sort());
});
