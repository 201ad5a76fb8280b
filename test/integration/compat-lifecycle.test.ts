// Docker compatibility of stopped containers, network removal, network options, prune and input checks.
// Expected behaviour is Docker 20.10's for the same script (documented or observed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NSNET, TestHost, waitFor } from '../helpers/host.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('compat: a stopped container releases its ports, address and listing; start gives them back or fails clearly', async (t) => {
  const h = TestHost.create('cpl');
  t.after(() => h.cleanup());
  h.ok(['network', 'create', '--subnet', '10.65.0.0/24', 'app']);
  h.ok(['run', '-d', '--name', 'web', '--network', 'app', '-p', '18080:80', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'fixed', '--network', 'app', '--ip', '10.65.0.50', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'cli', '--network', 'app', '--', 'sleep', '300']);
  const ipWeb = h.ok(['inspect', '-f', '{{.NetworkSettings.Networks.app.IPAddress}}', 'web']);
  assert.equal(h.ok(['network', 'inspect', '-f', '{{len .Containers}}', 'app']), '3');
  assert.match(h.exec('cli', 'getent hosts web').stdout, new RegExp(`^${ipWeb.replace(/\./g, '\\.')}\\s`));

  h.ok(['stop', '-t', '1', 'web', 'fixed']);
  assert.equal(h.exec('cli', 'getent hosts web').status, 2, 'its name no longer resolves');
  assert.equal(h.nsnet(['check']).status, 0, 'check is clean after the release');
  assert.equal(h.ok(['network', 'inspect', '-f', '{{range .Containers}}{{.Name}}{{end}}', 'app']), 'cli', 'network inspect no longer lists them');
  assert.equal(h.ok(['port', 'web']), '', 'no ports');
  assert.equal(h.ok(['inspect', '-f', '{{json .NetworkSettings.Ports}}', 'web']), '{}');
  assert.match(h.ok(['ps', '-a', '--filter', 'name=web', '--format', '{{.Status}}|{{.Ports}}']), /^Exited \(\d+\) .* ago\|$/);
  // Another container may publish the same host port now.
  h.ok(['run', '-d', '--name', 'web2', '--network', 'app', '-p', '18080:80', '--', 'sleep', '300']);
  const taken = h.nsnet(['start', 'web']);
  assert.equal(taken.status, 1);
  assert.match(taken.stderr, /18080.*already allocated|already allocated.*18080|port is already allocated/);
  assert.equal(h.ok(['inspect', '-f', '{{.State.Status}}', 'web']), 'exited', 'the failed start changed nothing');
  h.ok(['rm', '-f', 'web2']);
  h.ok(['start', 'web', 'fixed']);
  assert.equal(h.ok(['inspect', '-f', '{{.NetworkSettings.Networks.app.IPAddress}}', 'web']), ipWeb, 'the same address, it was free');
  assert.equal(h.ok(['inspect', '-f', '{{.NetworkSettings.Networks.app.IPAddress}}', 'fixed']), '10.65.0.50', 'static address kept');
  assert.match(h.ok(['port', 'web', '80']), /^0\.0\.0\.0:18080$/);
  assert.equal(h.ok(['network', 'inspect', '-f', '{{len .Containers}}', 'app']), '3');
  assert.match(h.exec('cli', 'getent hosts web').stdout, new RegExp(`^${ipWeb.replace(/\./g, '\\.')}\\s`), 'its name is back');
  // A foreground run that ended released too.
  assert.equal(h.nsnet(['run', '--name', 'fg', '--network', 'app', '-p', '18082:80', '--', 'true']).status, 0);
  // Docker still names the network of a stopped container, without an address.
  assert.equal(h.ok(['inspect', '-f', '{{len .NetworkSettings.Networks}}|{{.NetworkSettings.Networks.app.IPAddress}}|{{.NetworkSettings.Networks.app.NetworkID}}', 'fg']),
    `1||${h.ok(['network', 'inspect', '-f', '{{.Id}}', 'app'])}`);
  h.ok(['run', '-d', '--name', 'fg2', '--network', 'app', '-p', '18082:80', '--', 'sleep', '300']);
  assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);

  // A detached container whose command ended by itself gives its port up when another container publishes it.
  h.ok(['run', '-d', '--name', 'brief', '--network', 'app', '-p', '18083:80', '--', 'sh', '-c', 'exit 0']);
  await waitFor(() => h.ok(['inspect', '-f', '{{.State.Status}}', 'brief']) === 'exited', 5000, 50);
  h.ok(['run', '-d', '--name', 'next', '--network', 'app', '-p', '18083:80', '--', 'sleep', '300']);
  assert.equal(h.ok(['port', 'next', '80']), '0.0.0.0:18083');
  assert.equal(h.ok(['inspect', '-f', '{{.NetworkSettings.Networks.app.IPAddress}}', 'brief']), '', 'brief released its address');
  assert.equal(h.nsnet(['check']).status, 0);
  h.ok(['rm', '-f', 'brief', 'next']);

  // network rm with only created or stopped containers: removed; starting them later fails clearly.
  h.ok(['network', 'create', '--subnet', '10.66.0.0/24', 'gone']);
  h.ok(['create', '--name', 'c1', '--network', 'gone', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'c2', '--network', 'gone', '--', 'sleep', '300']);
  h.ok(['stop', '-t', '0', 'c2']);
  assert.equal(h.ok(['network', 'rm', 'gone']), 'gone');
  for (const c of ['c1', 'c2']) {
    const r = h.nsnet(['start', c]);
    assert.deepEqual([r.status, r.stdout, r.stderr], [1, '', 'Error: network gone not found\n'], c);
  }
  // A running container still holds its network.
  const busy = h.nsnet(['network', 'rm', 'app']);
  assert.equal(busy.status, 1);
  assert.match(busy.stderr, /has active endpoints \(cli, fg2, fixed, web\)/);

  // rm -f of a container whose netns another shares: removed; the sharer keeps running with loopback only.
  h.ok(['run', '-d', '--name', 'owner', '--network', 'app', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'sharer', '--network', 'container:owner', '--', 'sleep', '300']);
  assert.equal(h.nsnet(['rm', 'owner']).status, 1, 'without -f: refused');
  assert.equal(h.ok(['rm', '-f', 'owner']), 'owner');
  assert.equal(h.ok(['inspect', '-f', '{{.State.Running}}', 'sharer']), 'true');
  const pid = Number(h.ok(['inspect', '-f', '{{.State.Pid}}', 'sharer']));
  assert.ok(pid > 0);
  await waitFor(() => {
    const links = h.sh(`nsenter --net=/proc/${pid}/ns/net ip -o link | awk -F': ' '{print $2}'`).stdout;
    return links.trim() === 'lo';
  }, 5000, 50).catch(() => undefined);
  // The supervisor is in the host netns; its child (sleep) is in the shared one.
  const child = h.sh(`pgrep -P ${pid} | head -1`).stdout.trim() || String(pid);
  assert.equal(h.sh(`nsenter --net=/proc/${child}/ns/net ip -o link | awk -F': ' '{print $2}'`).stdout.trim().split('\n').map((l) => l.split('@')[0]).join(','), 'lo');
  h.ok(['rm', '-f', 'sharer']);
  assert.equal(h.nsnet(['check']).status, 0);
});

test('compat: network options, prune prompt, network exit codes, --ip without --subnet, FinishedAt', async (t) => {
  const h = TestHost.create('cpo');
  t.after(() => h.cleanup());

  // Docker's bridge options with their effect; unknown keys kept.
  h.ok(['network', 'create', '--subnet', '10.67.0.0/24', '-o', 'com.docker.network.bridge.enable_ip_masquerade=false',
    '-o', 'com.docker.network.bridge.host_binding_ipv4=127.0.0.1', '-o', 'com.docker.network.bridge.name=br-opts',
    '-o', 'com.docker.network.driver.mtu=1400', '-o', 'com.docker.network.bridge.enable_icc=false', '-o', 'com.example.custom=kept', 'opts']);
  const opts = JSON.parse(h.ok(['network', 'inspect', '-f', '{{json .Options}}', 'opts']));
  assert.deepEqual(opts, {
    'com.docker.network.bridge.name': 'br-opts', 'com.docker.network.bridge.enable_icc': 'false', 'com.docker.network.driver.mtu': '1400',
    'com.docker.network.bridge.enable_ip_masquerade': 'false', 'com.docker.network.bridge.host_binding_ipv4': '127.0.0.1', 'com.example.custom': 'kept',
  });
  assert.ok(h.links().includes('br-opts'));
  assert.match(h.sh('ip -o link show br-opts').stdout, /mtu 1400/);
  const rules = h.sh('nft list table inet nsnet').stdout;
  assert.doesNotMatch(rules, /ip saddr 10\.67\.0\.0\/24 oifname != "br-opts" masquerade/, 'no masquerade for this network');
  h.ok(['network', 'create', '--subnet', '10.68.0.0/24', 'plain']);
  assert.match(h.sh('nft list table inet nsnet').stdout, /ip saddr 10\.68\.0\.0\/24 oifname != "[^"]+" masquerade/, 'masquerade for the others');
  h.ok(['run', '-d', '--name', 'b', '--network', 'opts', '-p', '18081:80', '--', 'sleep', '300']);
  assert.equal(h.ok(['port', 'b', '80']), '127.0.0.1:18081', 'host_binding_ipv4');
  h.ok(['rm', '-f', 'b']);

  // Validation errors of network commands exit 1 (Docker's daemon errors).
  for (const args of [['network', 'create', '--subnet', 'bad', 'x'], ['network', 'create', '-o', 'com.docker.network.driver.mtu=1', 'x'],
    ['network', 'create', '-o', 'com.docker.network.bridge.enable_ip_masquerade=maybe', 'x'], ['network', 'rm', 'nope']]) {
    const r = h.nsnet(args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^Error: /);
  }

  // --ip on a network created without --subnet: Docker's refusal.
  h.ok(['network', 'create', 'auto']);
  const ip = h.nsnet(['run', '-d', '--network', 'auto', '--ip', '172.18.0.50', '--', 'sleep', '1']);
  assert.equal(ip.status, 125);
  assert.match(ip.stderr, /user specified IP address is supported only when connecting to networks with user configured subnets/);

  // network prune asks [y/N]; no answer (no terminal, empty stdin) removes nothing; y removes; -f does not ask.
  const env = `NSNET_ROOT=${h.root} NSNET_RESOLV_CONF=${h.root}/test-resolv.conf NSNET_NO_HELPER=1`;
  const no = h.sh(`${env} ${NSNET} network prune < /dev/null`);
  assert.equal(no.status, 0);
  assert.equal(no.stdout, 'WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ');
  assert.equal(h.ok(['network', 'ls', '-q', '--filter', 'type=custom']).split('\n').length, 3, 'nothing removed');
  const yes = h.sh(`echo y | ${env} ${NSNET} network prune`);
  assert.match(yes.stdout, /\[y\/N\] Deleted Networks:\nauto\nopts\nplain\n$/);
  h.ok(['network', 'create', 'p2']);
  assert.equal(h.ok(['network', 'prune', '-f']), 'Deleted Networks:\np2');

  // FinishedAt is when the command ended (recorded by the supervisor), not when nsnet next looked.
  h.ok(['run', '-d', '--name', 'short', '--', 'sh', '-c', 'sleep 0.2; exit 5']);
  await sleep(2500);
  const st = JSON.parse(h.ok(['inspect', '-f', '{{json .State}}', 'short']));
  assert.equal(st.ExitCode, 5);
  const ran = Date.parse(st.FinishedAt) - Date.parse(st.StartedAt);
  assert.ok(ran >= 150 && ran < 1500, `ran ${ran} ms`);
  assert.match(h.ok(['ps', '-a', '--filter', 'name=short', '--format', '{{.Status}}']), /^Exited \(5\) [2-9] seconds ago$/);

  // logs -f follows until the container stops; --tail N; --timestamps refused (no times are recorded).
  h.ok(['run', '-d', '--name', 'lg', '--', 'sh', '-c', 'echo 1; echo 2; echo 3; sleep 0.7; echo 4']);
  assert.equal(h.nsnet(['logs', '-f', 'lg'], { timeout: 10000 }).stdout, '1\n2\n3\n4\n');
  assert.equal(h.nsnet(['logs', '--tail', '2', 'lg']).stdout, '3\n4\n');
  assert.equal(h.nsnet(['logs', '--tail', '0', 'lg']).stdout, '');
  assert.equal(h.nsnet(['logs', '--timestamps', 'lg']).status, 2);
  // stdout and stderr kept apart, as Docker's.
  h.ok(['run', '-d', '--name', 'lg2', '--', 'sh', '-c', 'echo out1; echo err1 >&2; echo out2']);
  await waitFor(() => h.ok(['inspect', '-f', '{{.State.Status}}', 'lg2']) === 'exited', 5000, 50);
  const both = h.nsnet(['logs', 'lg2']);
  assert.deepEqual([both.stdout, both.stderr], ['out1\nout2\n', 'err1\n']);
  assert.deepEqual([h.nsnet(['logs', '--tail', '1', 'lg2']).stdout, h.nsnet(['logs', '--tail', '1', 'lg2']).stderr], ['out2\n', 'err1\n']);
});
