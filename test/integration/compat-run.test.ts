// Docker compatibility of run/create/exec/rm/port as scripts use them. Expected outputs and exit codes are
// Docker 20.10's for the same script (documented or observed).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { NSNET, TestHost, waitFor } from '../helpers/host.js';

test('compat: run -h, exit codes, rm -f of a missing container, port NAME PRIVATE, exec options', async (t) => {
  const h = TestHost.create('cpr');
  t.after(() => h.cleanup());
  h.ok(['network', 'create', '--subnet', '10.63.0.0/24', 'app']);

  // run -h NAME is --hostname, not help; the container really runs.
  h.ok(['run', '-d', '--name', 'web', '-h', 'web01', '--network', 'app', '-p', '80', '-p', '127.0.0.1::53/udp', '--', 'sleep', '300']);
  assert.equal(h.ok(['exec', 'web', '--', 'hostname']), 'web01');
  assert.equal(h.ok(['inspect', '-f', '{{.State.Running}}', 'web']), 'true');

  // rm -f of a missing container: the message, exit 0 (set -e clean-ups rely on it); without -f: exit 1.
  const rmf = h.nsnet(['rm', '-f', 'missing']);
  assert.deepEqual([rmf.status, rmf.stdout, rmf.stderr], [0, '', 'Error: No such container: missing\n']);
  assert.equal(h.nsnet(['rm', 'missing']).status, 1);

  // port NAME PRIVATE[/PROTO]: the host address of one port; unpublished: Docker's error, exit 1.
  const p80 = h.ok(['port', 'web', '80']);
  assert.match(p80, /^0\.0\.0\.0:\d+$/);
  assert.equal(h.ok(['port', 'web', '80/tcp']), p80);
  assert.match(h.ok(['port', 'web', '53/udp']), /^127\.0\.0\.1:\d+$/);
  const np = h.nsnet(['port', 'web', '81']);
  assert.deepEqual([np.status, np.stderr], [1, "Error: No public port '81/tcp' published for web\n"]);
  assert.equal(h.ok(['port', 'web']).split('\n').length, 2);

  // Command not found: 126 from exec, 127 from run (and run creates nothing).
  const e126 = h.nsnet(['exec', 'web', '--', 'no-such-command-x']);
  assert.equal(e126.status, 126, e126.stderr);
  assert.match(e126.stderr, /executable file not found in \$PATH/);
  const before = h.ok(['ps', '-aq']);
  const r127 = h.nsnet(['run', '--network', 'app', '--', 'no-such-command-x']);
  assert.equal(r127.status, 127, r127.stderr);
  assert.equal(h.ok(['ps', '-aq']), before, 'nothing created');
  // The command's own exit status comes through from run and exec.
  assert.equal(h.nsnet(['run', '--rm', '--network', 'app', '--', 'sh', '-c', 'exit 3']).status, 3);
  assert.equal(h.nsnet(['exec', 'web', '--', 'sh', '-c', 'exit 4']).status, 4);

  // exec -e / -w / -u / -i / -d, as Docker's.
  assert.equal(h.ok(['exec', '-e', 'A=1', '-e', 'B=two words', '-w', '/tmp', 'web', '--', 'sh', '-c', 'echo "$A|$B|$PWD"']), '1|two words|/tmp');
  assert.equal(h.ok(['exec', '-u', 'nobody', 'web', '--', 'id', '-un']), 'nobody');
  assert.equal(h.ok(['exec', '--user', '65534:65534', 'web', '--', 'id', '-u']), '65534');
  const noUser = h.nsnet(['exec', '-u', 'no-such-user-x', 'web', '--', 'true']);
  assert.notEqual(noUser.status, 0);
  assert.match(noUser.stderr, /unable to find user no-such-user-x/);
  // Without -i the command's stdin is empty; with -i it is ours.
  const sh = (cmd: string) => h.sh(cmd);
  const nsnet = `NSNET_ROOT=${h.root} NSNET_RESOLV_CONF=${h.root}/test-resolv.conf NSNET_NO_HELPER=1 ${NSNET}`;
  assert.equal(sh(`echo hi | ${nsnet} exec web -- cat`).stdout, '');
  assert.equal(sh(`echo hi | ${nsnet} exec -i web -- cat`).stdout, 'hi\n');
  // -it with no terminal: Docker's "the input device is not a TTY", exit 1; -t alone is accepted.
  const it = sh(`echo hi | ${nsnet} exec -it web -- cat`);
  assert.deepEqual([it.status, it.stderr], [1, 'Error: the input device is not a TTY\n']);
  assert.equal(sh(`${nsnet} exec -t web -- sh -c 'echo $TERM'`).stdout, 'xterm\n');
  // -d returns at once; the command runs in the container's netns.
  const mark = path.join(h.root, 'exec-d-mark');
  h.ok(['exec', '-d', 'web', '--', 'sh', '-c', `sleep 0.3; ip -o -4 addr show eth0 > ${mark}`]);
  await waitFor(() => fs.existsSync(mark) && fs.readFileSync(mark, 'utf8').includes('10.63.0.'), 5000, 50);

  // exec into a stopped (or never started) container fails: "Container ... is not running", exit 1.
  h.ok(['stop', '-t', '0', 'web']);
  const id = h.ok(['inspect', '-f', '{{.Id}}', 'web']);
  const stopped = h.nsnet(['exec', 'web', '--', 'true']);
  assert.deepEqual([stopped.status, stopped.stderr], [1, `Error: Container ${id} is not running\n`]);
  h.ok(['create', '--name', 'fresh', '--network', 'app', '--', 'sleep', '300']);
  assert.equal(h.nsnet(['exec', 'fresh', '--', 'true']).status, 1);
  // A stopped container holds no ports: port prints nothing / the not-published error.
  assert.equal(h.ok(['port', 'web']), '');
  assert.equal(h.nsnet(['port', 'web', '80']).status, 1);
});

test('compat: hostname, environment, /etc files and other flags scripts pass to run', async (t) => {
  const h = TestHost.create('cpf');
  t.after(() => h.cleanup());
  h.ok(['network', 'create', '--subnet', '10.64.0.0/24', 'app']);
  const envFile = path.join(h.root, 'env.list');
  fs.writeFileSync(envFile, '# a comment\n\nFROM_FILE=1\nOVERRIDE=file\n');

  // Default hostname: the short id; named in /etc/hosts with the address; HOSTNAME in the environment.
  const id = h.ok(['run', '-d', '--name', 'n1', '--network', 'app', '--', 'sleep', '300']);
  assert.equal(h.ok(['exec', 'n1', '--', 'hostname']), id.slice(0, 12));
  assert.equal(h.ok(['exec', 'n1', '--', 'sh', '-c', 'echo $HOSTNAME']), id.slice(0, 12));
  assert.match(h.ok(['exec', 'n1', '--', 'cat', '/etc/hosts']), new RegExp(`^10\\.64\\.0\\.\\d+\\tn1 ${id.slice(0, 12)}$`, 'm'));
  // Each container has its own: two "nodes" on one machine have different hostnames.
  h.ok(['run', '-d', '--name', 'n2', '--hostname', 'node2.cluster', '--network', 'app', '--', 'sleep', '300']);
  assert.equal(h.ok(['exec', 'n2', '--', 'hostname']), 'node2.cluster');
  assert.notEqual(h.ok(['exec', 'n1', '--', 'hostname']), h.ok(['exec', 'n2', '--', 'hostname']));
  // container: mode shares the target's hostname (as Docker); --hostname there is refused as Docker refuses it.
  assert.equal(h.ok(['run', '--rm', '--network', 'container:n2', '--', 'hostname']), 'node2.cluster');
  const conflict = h.nsnet(['run', '--rm', '--network', 'container:n2', '-h', 'x', '--', 'true']);
  assert.equal(conflict.status, 125);
  assert.match(conflict.stderr, /conflicting options: hostname and the network mode/);
  // host mode: the host's hostname (no UTS namespace of its own).
  assert.equal(h.ok(['run', '--rm', '--network', 'host', '--', 'hostname']), h.sh('hostname').stdout.trim());

  // -e, --env-file (file first, then -e), -w, --add-host, --dns-search, --dns-option, --label, -i/-t/--init.
  const out = h.ok(['run', '--rm', '--network', 'app', '--env-file', envFile, '-e', 'OVERRIDE=flag', '--env', 'X=a=b', '-w', '/tmp',
    '--add-host', 'db.internal:10.9.9.9', '--add-host', 'gw:host-gateway', '--dns-search', 'corp.example', '--dns-option', 'ndots:2',
    '--label', 'tier=db', '-i', '--init', '--', 'sh', '-c',
    'echo "$FROM_FILE $OVERRIDE $X $PWD"; grep -E "db.internal|gw" /etc/hosts; grep -E "^(search|options)" /etc/resolv.conf; env | grep -c NSNET_ || true']);
  assert.equal(out, '1 flag a=b /tmp\n10.9.9.9\tdb.internal\n10.64.0.1\tgw\nsearch corp.example\noptions ndots:2\n0');
  const bad = h.nsnet(['run', '--rm', '--network', 'app', '-w', '/no/such/dir', '--', 'true']);
  assert.equal(bad.status, 125);
  assert.match(bad.stderr, /workdir "\/no\/such\/dir": no such directory/);

  // --label, --mac-address as inspect shows them; ps --filter label=.
  h.ok(['run', '-d', '--name', 'lab', '--network', 'app', '--label', 'tier=front', '--mac-address', '02:42:0a:40:00:99', '--', 'sleep', '300']);
  assert.equal(h.ok(['inspect', '-f', '{{.NetworkSettings.Networks.app.MacAddress}}', 'lab']), '02:42:0a:40:00:99');
  assert.match(h.ok(['exec', 'lab', '--', 'ip', '-o', 'link', 'show', 'eth0']), /link\/ether 02:42:0a:40:00:99 /);
  assert.equal(h.ok(['ps', '--filter', 'label=tier=front', '--format', '{{.Names}} {{.Labels}}']), 'lab tier=front');

  // -P publishes every --expose port on an ephemeral host port.
  h.ok(['run', '-d', '--name', 'pall', '--network', 'app', '--expose', '8080', '--expose', '9000-9001/udp', '-P', '--', 'sleep', '300']);
  const ports = h.ok(['port', 'pall']).split('\n').map((l) => l.replace(/\d+$/, 'N')).sort();
  assert.deepEqual(ports, ['8080/tcp -> 0.0.0.0:N', '9000/udp -> 0.0.0.0:N', '9001/udp -> 0.0.0.0:N']);

  // -p HOSTRANGE:PORT: one free port of the host range (Docker's), the next container gets the next one.
  h.ok(['run', '-d', '--name', 'r1', '--network', 'app', '-p', '127.0.0.1:18100-18101:80', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'r2', '--network', 'app', '-p', '127.0.0.1:18100-18101:80', '--', 'sleep', '300']);
  assert.deepEqual([h.ok(['port', 'r1', '80']), h.ok(['port', 'r2', '80'])], ['127.0.0.1:18100', '127.0.0.1:18101']);
  const full = h.nsnet(['run', '-d', '--network', 'app', '-p', '127.0.0.1:18100-18101:80', '--', 'sleep', '300']);
  assert.equal(full.status, 125);
  assert.match(full.stderr, /every port of the range is already allocated/);

  // --restart: refused clearly unless "no" (nsnet does not restart containers).
  assert.equal(h.nsnet(['run', '--rm', '--network', 'app', '--restart', 'no', '--', 'true']).status, 0);
  for (const p of ['always', 'on-failure:3', 'unless-stopped']) {
    const r = h.nsnet(['run', '-d', '--network', 'app', '--restart', p, '--', 'sleep', '1']);
    assert.equal(r.status, 125, p);
    assert.match(r.stderr, /--restart .* is not supported: nsnet does not restart containers/);
  }
  // Bad values change nothing.
  const before = h.ok(['ps', '-aq']);
  for (const args of [['-h', 'bad name'], ['-e', '=x'], ['--add-host', 'nocolon'], ['--mac-address', '01:00:00:00:00:01'], ['--expose', '70000'], ['-u', 'no-such-user-x']]) {
    const r = h.nsnet(['run', '-d', '--network', 'app', ...args, '--', 'sleep', '1']);
    assert.ok(r.status === 125 || r.status === 2, `${args.join(' ')}: ${r.status} ${r.stderr}`);
    assert.match(r.stderr, /^Error: /);
  }
  assert.equal(h.ok(['ps', '-aq']), before);
});
