// The resident helper (src/cli/helper.ts) and its fast client (src/cli/client.c): a served command behaves exactly
// as the same command run in-process by that client (output, errors, exit status, environment, directory, and the
// context of the containers it starts: cgroup, umask, rlimits, capabilities, parent); a client unlike the helper
// is not served; nothing of a request stays anywhere; a request dies with its client; a busy helper is bypassed;
// the helper starts on first use and ends when idle.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { NSNET, TestHost, waitFor, type Result } from '../helpers/host.js';

const TRACE = { NSNET_HELPER_TRACE: '1' };
const served = (r: Result) => /nsnet: served by the helper/.test(r.stderr);
const strip = (s: string) => s.replace(/nsnet: (served by|not served by) the helper[^\n]*\n/g, '');

/** The helper serving this state directory: the process whose command line is `... --nsnet-helper <root>/helper/...`. */
function helperPid(h: TestHost): number | null {
  const want = `--nsnet-helper\0${h.root}/helper/`;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(want)) return Number(d);
    } catch { /* gone */ }
  }
  return null;
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
/** The helper is listening (its socket file exists): the next client is served. */
const listening = (h: TestHost) => {
  const d = path.join(h.root, 'helper');
  return fs.existsSync(d) && fs.readdirSync(d).some((n) => n.endsWith('.sock'));
};

async function startedHelper(h: TestHost): Promise<number> {
  const first = h.nsnet(['network', 'create', '--subnet', '10.66.0.0/24', 'hn'], { env: TRACE });
  assert.equal(first.status, 0, first.stderr);
  assert.ok(!served(first), 'the first command runs in-process (no helper yet)');
  await waitFor(() => listening(h), 10000, 20);
  return (await waitFor(() => helperPid(h), 10000, 20))!;
}

test('helper: same output, errors and exit status as in-process; the client\'s PATH and working directory apply', async (t) => {
  const h = TestHost.create('hlp');
  t.after(() => h.cleanup());
  await startedHelper(h);
  const viaHelper = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = h.nsnet(args, { env: { ...TRACE, ...env } });
    assert.ok(served(r), `served by the helper: ${args.join(' ')}\n${r.stderr}`);
    return { ...r, stderr: strip(r.stderr) };
  };
  const inProcess = (args: string[], env: NodeJS.ProcessEnv = {}) => h.nsnet(args, { env: { NSNET_NO_HELPER: '1', ...env } });

  const c = viaHelper(['create', '--network', 'hn', '--name', 'a', '-p', '8080:80', '--', 'sleep', '300']);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, /^[0-9a-f]{64}\n$/);
  // A second create without -p: options of the previous command line must not leak into this one.
  assert.equal(viaHelper(['create', '--network', 'hn', '--name', 'b', '--', 'sleep', '300']).status, 0);
  assert.deepEqual(JSON.parse(viaHelper(['inspect', 'b']).stdout)[0].HostConfig.PortBindings, {});
  // (ps without its CREATED column: two runs may straddle a second.)
  for (const args of [['ps', '-a', '--format', 'table {{.ID}}\t{{.Names}}\t{{.Status}}\t{{.Ports}}'], ['inspect', 'a'], ['port', 'a'], ['network', 'ls'], ['network', 'inspect', 'hn'],
    ['rm', 'nosuch'], ['create', '--network', 'hn', '--name', 'a', '--', 'true'], ['create', '--network', 'nonet', '--', 'true'],
    ['create', '--network', 'hn', '-p', '99999', '--', 'true'], ['network', 'create', '--subnet', 'bad', 'x'], ['inspect', 'a', 'nosuch'],
    ['create', '--bogus-option', '--', 'true'], ['start', 'nosuch']]) {
    const a = viaHelper(args);
    const b = inProcess(args);
    assert.deepEqual({ status: a.status, stdout: a.stdout, stderr: a.stderr }, { status: b.status, stdout: b.stdout, stderr: b.stderr }, args.join(' '));
  }
  // Commands the helper does not serve run in-process at once (the helper says so).
  const notServed = h.nsnet(['check'], { env: TRACE });
  assert.equal(notServed.status, 0, notServed.stderr);
  assert.match(notServed.stderr, /not served by the helper: not a command the helper serves/);
  // The environment is the client's: a command found only on the client's PATH.
  const bin = path.join(h.root, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'only-here'), '#!/bin/sh\nsleep 300\n', { mode: 0o755 });
  const pathEnv = { PATH: `${bin}:${process.env.PATH}` };
  assert.equal(viaHelper(['create', '--network', 'hn', '--name', 'p', '--', 'only-here'], pathEnv).status, 0);
  const missing = viaHelper(['create', '--network', 'hn', '--name', 'q', '--', 'only-here']);
  assert.equal(missing.status, 2, 'bad input');
  assert.match(missing.stderr, /exec: "only-here": executable file not found in \$PATH/);
  // `start` launches the process with the client's environment.
  assert.equal(viaHelper(['start', 'p'], pathEnv).status, 0);
  await waitFor(() => /Up/.test(viaHelper(['ps']).stdout), 5000);
  // `run -d` is served too; its process runs detached, under the supervisor, not in the helper.
  const rd = viaHelper(['run', '-d', '--name', 'r', '--network', 'hn', '--', 'sleep', '300']);
  assert.equal(rd.status, 0, rd.stderr);
  assert.match(rd.stdout, /^[0-9a-f]{64}\n$/);
  assert.equal(JSON.parse(viaHelper(['inspect', 'r']).stdout)[0].State.Status, 'running');
  // The working directory is the client's: a relative --root.
  const rel = h.sh(`cd ${path.dirname(h.root)} && NSNET_HELPER_TRACE=1 NSNET_ROOT= ${NSNET} --root ${path.basename(h.root)} ps -a -q`);
  assert.equal(rel.status, 0, rel.stderr);
  assert.ok(served(rel), rel.stderr);
  assert.equal(rel.stdout.trim().split('\n').length, 4);
  assert.equal(viaHelper(['rm', '-f', 'a', 'b', 'p', 'r']).status, 0);
  assert.equal(viaHelper(['ps', '-a', '-q']).stdout, '');
  assert.equal(h.nsnet(['check']).status, 0);
});

/** A pids cgroup (v1) of the test's own, removed after. */
function cgroup(t: { after: (fn: () => void) => void }, tag: string): string {
  const dir = `/sys/fs/cgroup/pids/nsnet-test-${tag}-${crypto.randomBytes(3).toString('hex')}`;
  fs.mkdirSync(dir);
  t.after(() => {
    for (let i = 0; i < 50; i++) {
      try {
        fs.rmdirSync(dir);
        return;
      } catch { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100); }
    }
  });
  return path.basename(dir);
}

test('helper: a container started through the helper has its client\'s context, exactly as in-process', async (t) => {
  const h = TestHost.create('hlc', { NSNET_HELPER_IDLE_MS: '600000' });
  t.after(() => h.cleanup());
  const helper = await startedHelper(h);
  // Two sessions that differ in everything: cgroup, umask, open-file limit, capabilities, environment.
  const sessions = [
    { tag: 'a', cg: cgroup(t, 'a'), umask: '0077', nofile: 777, caps: '', env: 'NSNET_T_SECRET_A=1', path: '/nsnet-test-a/bin' },
    { tag: 'b', cg: cgroup(t, 'b'), umask: '0002', nofile: 1234, caps: 'setpriv --bounding-set -sys_boot --', env: 'NSNET_T_SECRET_B=2', path: '/nsnet-test-b/bin' },
  ];
  const probe = 'umask; ulimit -n; grep pids /proc/self/cgroup; grep -E "^(Cap|NoNewPrivs|Seccomp)" /proc/self/status; env | grep -v -E "^(NSNET_HELPER_TRACE|NSNET_NO_HELPER|_)=" | sort; echo END; exec sleep 300';
  const launch = (s: typeof sessions[number], name: string, how: 'helper' | 'in-process', args: string[]) => {
    const extra = how === 'helper' ? 'NSNET_HELPER_TRACE=1' : 'NSNET_NO_HELPER=1';
    const cmd = `echo $$ > /sys/fs/cgroup/pids/${s.cg}/cgroup.procs && umask ${s.umask} && export ${s.env} PATH=${s.path}:$PATH ${extra} && exec prlimit --nofile=${s.nofile}:${s.nofile} -- ${s.caps} nsenter --net=/run/netns/${h.ns} ${NSNET} ${args.join(' ')}`;
    const env = { ...process.env, NSNET_ROOT: h.root, NSNET_RESOLV_CONF: '/dev/null' };
    const r = spawnSyncSh(cmd, env);
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    return r;
  };
  const logOf = async (name: string) => {
    const text = await waitFor(() => {
      const l = h.nsnet(['logs', name]).stdout;
      return l.includes('END') ? l : '';
    }, 10000, 50);
    return text;
  };
  const parentOf = (name: string) => {
    const pid = JSON.parse(h.ok(['inspect', name]))[0].State.Pid as number;
    return Number(/PPid:\s*(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  };
  const q = `'${probe.replace(/'/g, `'\\''`)}'`;
  const results: Record<string, { log: string; parent: number }> = {};
  for (const s of sessions) {
    for (const how of ['helper', 'in-process'] as const) {
      const name = `${s.tag}-${how === 'helper' ? 'h' : 'i'}`;
      const r = launch(s, name, how, ['run', '-d', '--name', name, '--network', 'hn', '--', 'sh', '-c', q]);
      if (how === 'helper') {
        // The restricted session is not served (its capabilities differ from the helper's): it runs in-process.
        assert.equal(served(r), s.caps === '', `${name} served: ${r.stderr}`);
      }
      results[name] = { log: await logOf(name), parent: parentOf(name) };
    }
    // `create` then `start`, through the helper: the start is what launches the process.
    const name = `${s.tag}-s`;
    launch(s, name, 'helper', ['create', '--name', name, '--network', 'hn', '--', 'sh', '-c', q]);
    launch(s, name, 'helper', ['start', name]);
    results[name] = { log: await logOf(name), parent: parentOf(name) };
  }
  const norm = (l: string) => l.replace(/^HOSTNAME=.*\n/m, '');
  for (const s of sessions) {
    const ref = results[`${s.tag}-i`];
    assert.match(ref.log, new RegExp(`^0?${s.umask.replace(/^0/, '')}\\n${s.nofile}\\n\\d+:pids:/${s.cg}\\n`), `${s.tag}: the session's context reached the container`);
    assert.ok(ref.log.includes(`PATH=${s.path}:`), 'its environment (PATH)');
    for (const k of [`${s.tag}-h`, `${s.tag}-s`]) {
      assert.equal(norm(results[k].log), norm(ref.log), `${k} = in-process`);
      assert.equal(results[k].parent, ref.parent, `${k}: same parent`);
      assert.notEqual(results[k].parent, helper, 'never a child of the helper');
    }
  }
  assert.notEqual(results['a-i'].log, results['b-i'].log);
  // Nothing of the clients' environments stays in the helper, nor anywhere under the state directory.
  const environ = fs.readFileSync(`/proc/${helper}/environ`, 'utf8');
  assert.ok(!environ.includes('NSNET_T_SECRET'), 'the helper keeps no client environment');
  const grep = spawnSyncSh(`grep -r -l -a NSNET_T_SECRET ${h.root} --exclude-dir=containers || true`, process.env);
  assert.equal(grep.stdout, '', 'no request on disk');
  h.ok(['rm', '-f', 'a-h', 'a-i', 'a-s', 'b-h', 'b-i', 'b-s']);
});

function spawnSyncSh(cmd: string, env: NodeJS.ProcessEnv): Result {
  const r = spawnSync('/bin/sh', ['-c', cmd], { encoding: 'utf8', env, timeout: 60000 });
  return { status: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

test('helper: a client with fewer capabilities is not served and gets what it would get in-process', async (t) => {
  const h = TestHost.create('hld', { NSNET_HELPER_IDLE_MS: '600000' });
  t.after(() => h.cleanup());
  await startedHelper(h);
  const env = { ...process.env, NSNET_ROOT: h.root, NSNET_RESOLV_CONF: '/dev/null', ...TRACE };
  const nocaps = (extra: string) => spawnSyncSh(`${extra} nsenter --net=/run/netns/${h.ns} setpriv --bounding-set=-all --inh-caps=-all -- ${NSNET} run -d --name x --network hn -- sleep 300`, env);
  const a = nocaps('');
  const b = nocaps('NSNET_NO_HELPER=1');
  assert.ok(!served(a), 'not served');
  assert.match(a.stderr, /not served by the helper: the client differs from the helper in Cap/);
  assert.notEqual(a.status, 0, 'without capabilities nsnet cannot act');
  assert.deepEqual({ status: a.status, stderr: strip(a.stderr) }, { status: b.status, stderr: b.stderr });
  assert.equal(h.ok(['ps', '-a', '-q']), '', 'nothing was created');
});

test('helper: a request dies with its client (interrupted before the start) and a busy helper is bypassed', async (t) => {
  const h = TestHost.create('hlr', { NSNET_HELPER_IDLE_MS: '600000' });
  t.after(() => h.cleanup());
  const pid = await startedHelper(h);
  process.kill(pid, 'SIGSTOP'); // busy: it accepts nothing now
  t.after(() => { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } });
  // Bypassed after NSNET_HELPER_WAIT_MS (200 ms): read-only and mutating commands alike run in-process.
  const t0 = Date.now();
  const ps = h.nsnet(['ps', '-a'], { env: TRACE });
  assert.equal(ps.status, 0, ps.stderr);
  assert.ok(!served(ps), 'bypassed');
  const byp = h.nsnet(['create', '--network', 'hn', '--name', 'byp', '--', 'sleep', '300'], { env: TRACE });
  assert.equal(byp.status, 0, byp.stderr);
  assert.ok(!served(byp));
  assert.ok(Date.now() - t0 < 10000);
  // Interrupted while waiting (a long wait, so that it is still waiting): the request must never run.
  const child = spawn('nsenter', [`--net=/run/netns/${h.ns}`, NSNET, 'create', '--network', 'hn', '--name', 'late', '--', 'true'], {
    env: { ...process.env, NSNET_ROOT: h.root, NSNET_RESOLV_CONF: '/dev/null', NSNET_HELPER_WAIT_MS: '60000', ...TRACE },
  });
  const done = new Promise<number | string>((r) => child.on('close', (code, sig) => r(sig ?? code ?? 1)));
  await new Promise((r) => setTimeout(r, 500));
  const client = child.pid!; // nsenter execs bin/nsnet, which execs nsnet-fast
  assert.match(fs.readFileSync(`/proc/${client}/cmdline`, 'utf8'), /nsnet-fast/, 'the fast client is waiting');
  process.kill(client, 'SIGINT');
  assert.notEqual(await done, 0, 'interrupted');
  process.kill(pid, 'SIGCONT');
  // The helper now meets the two bypassed requests and the interrupted one, and runs none of them.
  const after = h.nsnet(['ps', '-a', '--format', 'json'], { env: TRACE });
  assert.ok(served(after), 'the helper serves again');
  const names = after.stdout.trim().split('\n').map((l) => JSON.parse(l).Names);
  assert.deepEqual(names, ['byp'], 'the bypassed create ran once (in-process), the interrupted one never');
  assert.equal(h.nsnet(['check']).status, 0);
});

test('helper: ends when idle; a killed helper is replaced; an untrusted helper directory is not used', async (t) => {
  const h = TestHost.create('hlq', { NSNET_HELPER_IDLE_MS: '400' });
  t.after(() => h.cleanup());
  const pid = await startedHelper(h);
  assert.ok(served(h.nsnet(['network', 'ls'], { env: TRACE })));
  await waitFor(() => !alive(pid), 5000, 50);
  assert.ok(!listening(h), 'its socket went with it');

  // Killed without notice: the next command finds a dead socket, runs in-process and starts a new helper.
  const pid2 = (await waitFor(() => {
    h.nsnet(['network', 'ls']);
    return listening(h) ? helperPid(h) : null;
  }, 10000, 100))!;
  process.kill(pid2, 'SIGKILL');
  await waitFor(() => !alive(pid2), 5000, 20);
  const r = h.nsnet(['ps', '-a'], { env: TRACE });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!served(r), 'ran in-process');
  const pid3 = (await waitFor(() => (helperPid(h) !== pid2 ? helperPid(h) : null), 10000, 50))!;
  assert.notEqual(pid3, pid2);
  await waitFor(() => listening(h), 10000, 20);
  // A helper directory others could write to is never trusted: the fast client does not use it, and the command,
  // run in-process, refuses the state directory (engine/statedir.ts).
  const dir = path.join(h.root, 'helper');
  fs.chmodSync(dir, 0o777);
  const u = h.nsnet(['ps', '-a'], { env: TRACE });
  assert.ok(!served(u), 'not served from a writable directory');
  assert.equal(u.status, 1);
  assert.match(u.stderr, /^Error: state directory \S+ \(--root \/ NSNET_ROOT\): helper\/ is writable by others/);
  fs.chmodSync(dir, 0o700);
});

test('helper: the first command on a state directory that does not exist yet makes it and starts the helper', async (t) => {
  const h = TestHost.create('hls', { NSNET_HELPER_IDLE_MS: '2000' });
  t.after(() => h.cleanup());
  const root = path.join(h.root, 'new-root');
  const env = { NSNET_ROOT: root, ...TRACE };
  const first = h.nsnet(['network', 'create', '--subnet', '10.67.0.0/24', 'n'], { env });
  assert.equal(first.status, 0, first.stderr);
  assert.ok(!served(first));
  await waitFor(() => {
    const d = path.join(root, 'helper');
    return fs.existsSync(d) && fs.readdirSync(d).some((k) => k.endsWith('.sock'));
  }, 10000, 50);
  const second = h.nsnet(['network', 'ls', '-q'], { env });
  assert.ok(served(second), 'the second command is served');
  assert.equal(second.stdout.trim().split('\n').length, 4, 'n, bridge, host, none');
});

test('helper: a client whose output nobody reads holds up only itself, never the helper', async (t) => {
  const h = TestHost.create('hlo', { NSNET_HELPER_IDLE_MS: '600000' });
  t.after(() => h.cleanup());
  await startedHelper(h);
  h.ok(['create', '--network', 'hn', '--name', 'a', '--', 'sleep', '300']);
  // ≈1 MB of output into a pipe whose reader sleeps: far more than a pipe (64 KiB) or a socket buffer holds.
  const many = Array(500).fill('a').join(' ');
  const stuck = spawn('/bin/sh', ['-c', `nsenter --net=/run/netns/${h.ns} ${NSNET} inspect ${many} | sleep 4`], {
    env: { ...process.env, NSNET_ROOT: h.root, NSNET_RESOLV_CONF: '/dev/null' }, stdio: 'ignore',
  });
  const done = new Promise((r) => stuck.on('close', r));
  await new Promise((r) => setTimeout(r, 1000));
  const r = h.nsnet(['ps', '-a', '-q'], { env: TRACE });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(served(r), `the helper still serves others: ${r.stderr}`);
  await done;
});

test('helper: a helper that dies during a command is reported at once; the next command recovers', async (t) => {
  const h = TestHost.create('hlk', { NSNET_HELPER_IDLE_MS: '600000' });
  t.after(() => h.cleanup());
  // The helper this first command starts kills itself when a create reaches its sandbox step.
  const first = h.nsnet(['network', 'create', '--subnet', '10.68.0.0/24', 'hn'], { env: { NSNET_HELPER_CRASH_AT: 'create:sandbox' } });
  assert.equal(first.status, 0, first.stderr);
  await waitFor(() => listening(h), 10000, 20);
  const t0 = Date.now();
  const r = h.nsnet(['create', '--network', 'hn', '--name', 'x', '--', 'sleep', '300'], { env: TRACE });
  assert.ok(Date.now() - t0 < 5000, 'reported at once');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^Error: the nsnet helper ended during the command \(see \S+\/helper\/log\); the next nsnet command finishes or rolls back what it left\n$/);
  assert.equal(h.nsnet(['check']).status, 1, 'the unfinished create is visible');
  const next = h.nsnet(['create', '--network', 'hn', '--name', 'y', '--', 'sleep', '300']);
  assert.equal(next.status, 0, next.stderr);
  assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);
  assert.deepEqual(h.ok(['ps', '-a', '--format', 'json']).split('\n').map((l) => JSON.parse(l).Names), ['y'], 'the half-done create was rolled back');
});
