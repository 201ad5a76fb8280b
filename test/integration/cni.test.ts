// CNI conformance of our own: the plugin bin/cni/nsnet driven as a runtime drives it (libcni's invoke: exec with the
// CNI_* environment and the configuration on stdin, the result or error object read from stdout), inside a
// throwaway host netns, over every command x every supported version, the error cases, what nsnet's own commands
// show and refuse, reconcile of a netns that vanished without DEL, 50 parallel ADDs, and kill -9 at every crash point
// followed by the runtime's retry (DEL then ADD).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, TestHost, must, sh } from '../helpers/host.js';

const PLUGIN = path.join(REPO, 'bin/cni/nsnet');
const VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
const older = (v: string, than: string) => v.localeCompare(than, undefined, { numeric: true }) < 0;

interface Out { status: number; stdout: string; stderr: string; json: Record<string, unknown> | null }

function baseEnv(h: TestHost, extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NSNET_ROOT: h.root, NSNET_RESOLV_CONF: path.join(h.root, 'test-resolv.conf'), CNI_PATH: path.dirname(PLUGIN) };
  for (const k of Object.keys(env)) if (k.startsWith('CNI_') && k !== 'CNI_PATH') delete env[k];
  delete env.NSNET_HOST_NETNS;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

function parse(stdout: string): Record<string, unknown> | null {
  try { return stdout.trim() ? JSON.parse(stdout) : null; } catch { return null; }
}

/** One plugin invocation, as libcni's invoke.ExecPlugin does it. */
function cni(h: TestHost, env: Record<string, string | undefined>, conf: unknown): Out {
  const r = spawnSync('nsenter', [`--net=/run/netns/${h.ns}`, PLUGIN], {
    encoding: 'utf8', env: baseEnv(h, env), input: typeof conf === 'string' ? conf : JSON.stringify(conf), timeout: 60000,
  });
  const stdout = r.stdout ?? '';
  return { status: r.status ?? 128, stdout, stderr: r.stderr ?? '', json: parse(stdout) };
}

function cniAsync(h: TestHost, env: Record<string, string | undefined>, conf: unknown): Promise<Out> {
  return new Promise((resolve) => {
    const p = spawn('nsenter', [`--net=/run/netns/${h.ns}`, PLUGIN], { env: baseEnv(h, env) });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ status: code ?? 128, stdout, stderr, json: parse(stdout) }));
    p.stdin.end(JSON.stringify(conf));
  });
}

function ok(r: Out, what: string): Out {
  assert.equal(r.status, 0, `${what}: exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** A failure as the spec shapes it: non-zero exit, {cniVersion, code, msg} on stdout. */
function fails(r: Out, code: number, what: string, version?: string): Record<string, unknown> {
  assert.notEqual(r.status, 0, `${what}: must fail\nstdout: ${r.stdout}`);
  assert.ok(r.json, `${what}: error object on stdout, got ${JSON.stringify(r.stdout)} (stderr ${r.stderr})`);
  assert.equal(r.json!.code, code, `${what}: ${r.stdout}`);
  assert.equal(typeof r.json!.msg, 'string');
  if (version) assert.equal(r.json!.cniVersion, version, what);
  return r.json!;
}

/** A runtime's container netns (the runtime owns it; the test removes it through h.cleanup). */
function runtimeNetns(h: TestHost): string {
  const ns = `nsc-${crypto.randomBytes(3).toString('hex')}`;
  must(sh(`ip netns add ${ns}`), 'ip netns add');
  h.extraNs.push(ns);
  return ns;
}

const att = (id: string, ns: string | undefined, ifname = 'eth0', args?: string) => ({
  CNI_CONTAINERID: id, CNI_NETNS: ns === undefined ? undefined : `/run/netns/${ns}`, CNI_IFNAME: ifname, CNI_ARGS: args,
});

function addrIn(h: TestHost, ns: string, ifname = 'eth0'): string[] {
  const r = must(sh(`ip -n ${ns} -j -4 addr show dev ${ifname}`), 'ip addr');
  return (JSON.parse(r.stdout) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>).flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`));
}

function psCni(h: TestHost): Array<Record<string, string>> {
  return h.ok(['ps', '--format', 'json']).split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((c) => String(c.Command).includes('<cni>'));
}

test('every command x every version: ADD result shape, CHECK, STATUS, GC, DEL idempotent', () => {
  const h = TestHost.create('cni');
  try {
    for (const [i, v] of VERSIONS.entries()) {
      const net = { cniVersion: v, name: `cnet${i}`, type: 'nsnet', subnet: `10.77.${i}.0/24` };
      const ver = ok(cni(h, { CNI_COMMAND: 'VERSION' }, { cniVersion: v }), `VERSION ${v}`);
      assert.deepEqual(ver.json, { cniVersion: v, supportedVersions: VERSIONS });
      // libcni's version probe (ValidateNetworkList, GetVersionInfo) sets the attachment variables to "dummy".
      const probe = ok(cni(h, { CNI_COMMAND: 'VERSION', CNI_CONTAINERID: 'dummy', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: 'dummy' }, { cniVersion: v }), `VERSION probe ${v}`);
      assert.deepEqual(probe.json, ver.json);
      const ns = runtimeNetns(h);
      const add = ok(cni(h, { CNI_COMMAND: 'ADD', ...att(`ctr${i}`, ns) }, net), `ADD ${v}`).json as {
        cniVersion: string; interfaces: Array<{ name: string; mac: string; sandbox?: string; mtu?: number }>;
        ips: Array<{ address: string; gateway: string; interface: number; version?: string }>; routes: Array<{ dst: string; gw: string }>; dns: { nameservers: string[] };
      };
      assert.equal(add.cniVersion, v);
      assert.equal(add.interfaces.length, 3);
      const ctrIf = add.interfaces[add.ips[0].interface];
      assert.equal(ctrIf.name, 'eth0');
      assert.equal(ctrIf.sandbox, `/run/netns/${ns}`);
      assert.match(add.ips[0].address, new RegExp(`^10\\.77\\.${i}\\.\\d+/24$`));
      assert.equal(add.ips[0].gateway, `10.77.${i}.1`);
      assert.equal(add.ips[0].version, older(v, '1.0.0') ? '4' : undefined, `ips[].version for ${v}`);
      assert.equal(add.interfaces[0].mtu, v === '1.1.0' ? 1500 : undefined, `interfaces[].mtu for ${v}`);
      assert.deepEqual(add.routes, [{ dst: '0.0.0.0/0', gw: `10.77.${i}.1` }]);
      assert.deepEqual(add.dns.nameservers, [`10.77.${i}.1`]);
      // The kernel agrees with the result.
      assert.deepEqual(addrIn(h, ns), [add.ips[0].address]);
      assert.match(must(sh(`ip -n ${ns} route show default`), 'route').stdout, new RegExp(`via 10\\.77\\.${i}\\.1 dev eth0`));
      assert.equal(must(sh(`ip -n ${ns} -j link show eth0`), 'link').stdout.includes(ctrIf.mac), true);
      const withPrev = { ...net, prevResult: add };
      const chk = cni(h, { CNI_COMMAND: 'CHECK', ...att(`ctr${i}`, ns) }, withPrev);
      if (older(v, '0.4.0')) fails(chk, 1, `CHECK ${v}`, v);
      else ok(chk, `CHECK ${v}`);
      const st = cni(h, { CNI_COMMAND: 'STATUS' }, net);
      if (older(v, '1.1.0')) fails(st, 1, `STATUS ${v}`, v);
      else ok(st, `STATUS ${v}`);
      const gc = cni(h, { CNI_COMMAND: 'GC' }, { ...net, 'cni.dev/valid-attachments': [{ containerID: `ctr${i}`, ifname: 'eth0' }] });
      if (older(v, '1.1.0')) fails(gc, 1, `GC ${v}`, v);
      else ok(gc, `GC ${v}`);
      assert.equal(psCni(h).length, 1, `GC kept the valid attachment (${v})`);
      ok(cni(h, { CNI_COMMAND: 'DEL', ...att(`ctr${i}`, ns) }, withPrev), `DEL ${v}`);
      assert.deepEqual(must(sh(`ip -n ${ns} -j link show`), 'links').stdout.includes('"eth0"'), false, 'DEL removed the interface');
      ok(cni(h, { CNI_COMMAND: 'DEL', ...att(`ctr${i}`, ns) }, withPrev), `DEL again ${v}`);
      ok(cni(h, { CNI_COMMAND: 'DEL', ...att(`ctr${i}`, undefined) }, net), `DEL without CNI_NETNS ${v}`);
      ok(cni(h, { CNI_COMMAND: 'DEL', ...att('never-added', ns) }, net), `DEL of an unknown attachment ${v}`);
      assert.equal(psCni(h).length, 0);
    }
    // GC (1.1.0) removes what the runtime no longer lists, in both spellings of the key, and frees the address.
    const net = { cniVersion: '1.1.0', name: 'gcnet', type: 'nsnet', subnet: '10.78.0.0/24' };
    const ids = ['g1', 'g2', 'g3'];
    const nss = ids.map(() => runtimeNetns(h));
    ids.forEach((id, k) => ok(cni(h, { CNI_COMMAND: 'ADD', ...att(id, nss[k]) }, net), `ADD ${id}`));
    ok(cni(h, { CNI_COMMAND: 'GC' }, { ...net, 'cni.dev/valid-attachments': [{ containerID: 'g1', ifname: 'eth0' }, { containerID: 'g2', ifname: 'eth0' }] }), 'GC');
    assert.deepEqual(psCni(h).map((c) => c.Names).sort(), ['cni-g1', 'cni-g2']);
    ok(cni(h, { CNI_COMMAND: 'GC' }, { ...net, 'cni.dev/attachments': [{ containerID: 'g1', ifname: 'eth0' }] }), 'GC (older key)');
    assert.deepEqual(psCni(h).map((c) => c.Names), ['cni-g1']);
    const netInspect = JSON.parse(h.ok(['network', 'inspect', 'gcnet']))[0];
    assert.equal(Object.keys(netInspect.Containers).length, 1, 'addresses of collected attachments are free');
    fails(cni(h, { CNI_COMMAND: 'GC' }, net), 7, 'GC without the list');
    const chk = h.nsnet(['check']);
    assert.equal(chk.status, 0, chk.stdout + chk.stderr);
  } finally {
    h.cleanup();
  }
});

test('error cases: bad JSON, missing env, unknown version, interface already there, netns gone, mismatching network, broken attachment', () => {
  const h = TestHost.create('cnierr');
  try {
    const net = { cniVersion: '1.0.0', name: 'enet', type: 'nsnet', subnet: '10.79.0.0/24' };
    const ns = runtimeNetns(h);
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e1', ns) }, '{"cniVersion": "1.0.0", "name": '), 6, 'bad JSON');
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e1', ns) }, ''), 6, 'empty stdin');
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e1', undefined) }, net), 4, 'ADD without CNI_NETNS');
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e1', ns), CNI_IFNAME: undefined }, net), 4, 'ADD without CNI_IFNAME');
    fails(cni(h, { CNI_COMMAND: undefined }, net), 4, 'no CNI_COMMAND');
    fails(cni(h, { CNI_COMMAND: 'BOGUS' }, net), 4, 'unknown CNI_COMMAND');
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e1', ns) }, { ...net, cniVersion: '0.2.0' }), 1, 'unknown version', '0.2.0');
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e1', ns) }, { ...net, cniVersion: '2.0.0' }), 1, 'future version', '2.0.0');
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e1', 'no-such-netns') }, net), 4, 'netns gone');
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e1', ns) }, { ...net, ipv6: 'fd00::/64' }), 2, 'ipv6');
    must(sh(`ip -n ${ns} link add eth0 type veth peer name eth0p`), 'an eth0 of the runtime');
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e1', ns) }, net), 100, 'interface already there');
    must(sh(`ip -n ${ns} link del eth0`), 'del eth0');
    // Nothing of the refused requests was left behind (the network was created by the interface test's ADD).
    assert.equal(psCni(h).length, 0);
    ok(cni(h, { CNI_COMMAND: 'ADD', ...att('e1', ns) }, net), 'ADD');
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e1', ns) }, net), 100, 'ADD twice');
    const ns2 = runtimeNetns(h);
    const mm = fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e2', ns2) }, { ...net, subnet: '10.80.0.0/24' }), 7, 'mismatching subnet');
    assert.match(String(mm.details), /subnet/);
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e2', ns2) }, { ...net, mtu: 1400 }), 7, 'mismatching mtu');
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e2', ns2) }, { ...net, internal: true }), 7, 'mismatching internal');
    // STATUS (1.1.0) sees a network whose bridge is gone (51); reconcile repairs it.
    const v11 = { ...net, cniVersion: '1.1.0' };
    ok(cni(h, { CNI_COMMAND: 'STATUS' }, v11), 'STATUS');
    const br = JSON.parse(h.ok(['network', 'inspect', 'enet']))[0].Options['com.docker.network.bridge.name'];
    must(sh(`ip -n ${h.ns} link del ${br}`), 'del bridge');
    assert.match(String(fails(cni(h, { CNI_COMMAND: 'STATUS' }, v11), 51, 'STATUS without the bridge').details), /bridge .* is missing/);
    h.ok(['reconcile']);
    ok(cni(h, { CNI_COMMAND: 'STATUS' }, v11), 'STATUS after reconcile');
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e2', ns2) }, { ...net, runtimeConfig: { ips: ['10.79.0.2'] } }), 101, 'static address taken');
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e2', ns2) }, { ...net, runtimeConfig: { ips: ['10.99.0.2'] } }), 7, 'static address outside the subnet');
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('e2', ns2) }, { ...net, runtimeConfig: { aliases: ['bad name'] } }), 7, 'bad alias');
    fails(cni(h, { CNI_COMMAND: 'CHECK', ...att('unknown', ns2) }, net), 3, 'CHECK of an unknown attachment');
    // CHECK sees what someone broke: the address, then the interface.
    must(sh(`ip -n ${ns} addr flush dev eth0`), 'flush');
    assert.match(String(fails(cni(h, { CNI_COMMAND: 'CHECK', ...att('e1', ns) }, net), 102, 'CHECK, address gone').details), /address .* is missing/);
    must(sh(`ip -n ${ns} link del eth0`), 'del eth0');
    assert.match(String(fails(cni(h, { CNI_COMMAND: 'CHECK', ...att('e1', ns) }, net), 102, 'CHECK, interface gone').details), /interface eth0 is missing/);
    ok(cni(h, { CNI_COMMAND: 'DEL', ...att('e1', ns) }, net), 'DEL of a broken attachment');
    assert.equal(psCni(h).length, 0);
    const chk = h.nsnet(['check']);
    assert.equal(chk.status, 0, chk.stdout + chk.stderr);
  } finally {
    h.cleanup();
  }
});

test('nsnet sees CNI attachments: ps/inspect/network inspect, rm refused, ports, names, an nsnet container talks to them; a vanished netns is garbage for reconcile', () => {
  const h = TestHost.create('cnivis');
  try {
    const net = { cniVersion: '0.4.0', name: 'vnet', type: 'nsnet', subnet: '10.81.0.0/24', runtimeConfig: {
      portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp', hostIP: '' }], aliases: { vnet: ['www'] },
    } };
    const ns = runtimeNetns(h);
    const add = ok(cni(h, { CNI_COMMAND: 'ADD', ...att('0123456789abcdef', ns, 'eth0', 'IgnoreUnknown=1;K8S_POD_NAME=web') }, net), 'ADD').json as { ips: Array<{ address: string }> };
    const ip = add.ips[0].address.split('/')[0];
    const [row] = psCni(h);
    assert.equal(row.Names, 'cni-0123456789ab');
    assert.match(row.Ports, /0\.0\.0\.0:18080->80\/tcp/);
    const ins = JSON.parse(h.ok(['inspect', 'cni-0123456789ab']))[0];
    assert.equal(ins.Cni.ContainerID, '0123456789abcdef');
    assert.equal(ins.Cni.Attachments[0].Netns, `/run/netns/${ns}`);
    assert.equal(ins.NetworkSettings.SandboxKey, `/run/netns/${ns}`);
    assert.equal(ins.NetworkSettings.Networks.vnet.IPAddress, ip);
    assert.deepEqual(ins.NetworkSettings.Networks.vnet.Aliases.slice(0, 2), ['web', 'www']);
    const nin = JSON.parse(h.ok(['network', 'inspect', 'vnet']))[0];
    assert.equal((Object.values(nin.Containers)[0] as { Name: string }).Name, 'cni-0123456789ab');
    for (const cmd of [['rm', '-f', 'cni-0123456789ab'], ['stop', 'cni-0123456789ab'], ['network', 'disconnect', 'vnet', 'cni-0123456789ab'], ['network', 'rm', 'vnet']]) {
      const r = h.nsnet(cmd);
      assert.notEqual(r.status, 0, `${cmd.join(' ')} must be refused`);
      assert.match(r.stderr, /^Error: [^\n]+\n$/);
    }
    assert.equal(psCni(h).length, 1, 'still attached');
    // A server in the runtime's container: its published port from the host's 127.0.0.1, its names from an nsnet
    // container on the same network (nsnet's resolver), and plain traffic both ways.
    const www = path.join(h.root, 'www');
    must(sh(`mkdir -p ${www} && echo hello-from-cni > ${www}/index.html`), 'www');
    const srv = spawn('ip', ['netns', 'exec', ns, 'busybox', 'httpd', '-f', '-p', '80', '-h', www], { stdio: 'ignore' });
    try {
      h.ok(['run', '-d', '--name', 'peer', '--network', 'vnet', '--', 'sleep', '60']);
      const dig = h.exec('peer', 'busybox nslookup web; busybox nslookup www');
      assert.equal(dig.status, 0, dig.stdout + dig.stderr);
      assert.equal((dig.stdout.match(new RegExp(ip.replace(/\./g, '\\.'), 'g')) ?? []).length, 2, dig.stdout);
      const peerIp = JSON.parse(h.ok(['inspect', 'peer']))[0].NetworkSettings.Networks.vnet.IPAddress;
      must(sh(`ip netns exec ${ns} ping -c1 -W2 ${peerIp}`), 'CNI container -> nsnet container');
      let got = '';
      for (let k = 0; k < 50 && !got; k++) {
        const r = h.sh('curl -s -m 2 http://127.0.0.1:18080/');
        if (r.status === 0) got = r.stdout;
        else spawnSync('sleep', ['0.1']);
      }
      assert.match(got, /hello-from-cni/, 'published port reached from 127.0.0.1');
      const w = h.exec('peer', 'curl -s -m 2 http://web/');
      assert.match(w.stdout, /hello-from-cni/, `by name from the nsnet container: ${w.stderr}`);
    } finally {
      srv.kill('SIGKILL');
    }
    h.ok(['rm', '-f', 'peer']);
    // Someone deletes nsnet's interface in the runtime's netns: check reports it, reconcile makes it again.
    must(sh(`ip -n ${ns} link del eth0`), 'del eth0');
    const broken = h.nsnet(['check']);
    assert.equal(broken.status, 1);
    assert.match(broken.stdout, /missing-veth|missing-address/);
    assert.match(h.ok(['reconcile']), /recreated interface eth0 of CNI attachment 0123456789abcdef/);
    assert.deepEqual(addrIn(h, ns), [add.ips[0].address]);
    ok(cni(h, { CNI_COMMAND: 'CHECK', ...att('0123456789abcdef', ns) }, net), 'CHECK after reconcile');
    const fixed = h.nsnet(['check']);
    assert.equal(fixed.status, 0, fixed.stdout + fixed.stderr);
    // The runtime loses the netns without DEL: check reports it, reconcile removes the attachment and its port.
    must(sh(`ip netns del ${ns}`), 'ip netns del');
    h.extraNs.splice(h.extraNs.indexOf(ns), 1);
    const chk = h.nsnet(['check']);
    assert.equal(chk.status, 1);
    assert.match(chk.stdout, /cni-netns-gone/);
    assert.match(h.ok(['reconcile']), /removed CNI attachment 0123456789abcdef eth0/);
    assert.equal(psCni(h).length, 0);
    const after = h.nsnet(['check']);
    assert.equal(after.status, 0, after.stdout + after.stderr);
    assert.doesNotMatch(must(h.sh('nft list map inet nsnet dnat_any'), 'nft').stdout, /18080/);
  } finally {
    h.cleanup();
  }
});

test('one runtime container on two networks: one nsnet container with two endpoints; ports published once; DEL one at a time', () => {
  const h = TestHost.create('cnimulti');
  try {
    const ports = { portMappings: [{ hostPort: 18090, containerPort: 80, protocol: 'tcp' }] };
    const a = { cniVersion: '1.0.0', name: 'neta', type: 'nsnet', subnet: '10.84.0.0/24', runtimeConfig: ports };
    const b = { cniVersion: '1.0.0', name: 'netb', type: 'nsnet', subnet: '10.85.0.0/24', runtimeConfig: ports };
    const ns = runtimeNetns(h);
    ok(cni(h, { CNI_COMMAND: 'ADD', ...att('m1', ns, 'eth0') }, a), 'ADD neta');
    ok(cni(h, { CNI_COMMAND: 'ADD', ...att('m1', ns, 'eth1') }, b), 'ADD netb');
    fails(cni(h, { CNI_COMMAND: 'ADD', ...att('m1', ns, 'eth2') }, a), 100, 'a second interface on the same network');
    const [row] = psCni(h);
    assert.equal(row.Networks, 'neta,netb');
    assert.match(row.Ports, /0\.0\.0\.0:18090->80\/tcp/);
    assert.equal(addrIn(h, ns, 'eth0').length, 1);
    assert.equal(addrIn(h, ns, 'eth1').length, 1);
    // The default route is the first network's; the second ADD found one and left it alone.
    assert.match(must(sh(`ip -n ${ns} route show default`), 'route').stdout, /via 10\.84\.0\.1 dev eth0/);
    ok(cni(h, { CNI_COMMAND: 'CHECK', ...att('m1', ns, 'eth1') }, b), 'CHECK netb');
    ok(cni(h, { CNI_COMMAND: 'DEL', ...att('m1', ns, 'eth0') }, a), 'DEL neta');
    const [left] = psCni(h);
    assert.equal(left.Networks, 'netb');
    assert.match(left.Ports, /18090/, 'the ports move to the remaining network');
    assert.match(must(h.sh('nft list map inet nsnet dnat_any'), 'nft').stdout, /10\.85\.0\.\d+ \. 80/);
    let chk = h.nsnet(['check']);
    assert.equal(chk.status, 0, chk.stdout + chk.stderr);
    ok(cni(h, { CNI_COMMAND: 'DEL', ...att('m1', ns, 'eth1') }, b), 'DEL netb');
    assert.equal(psCni(h).length, 0);
    assert.doesNotMatch(must(h.sh('nft list map inet nsnet dnat_any'), 'nft').stdout, /18090/);
    chk = h.nsnet(['check']);
    assert.equal(chk.status, 0, chk.stdout + chk.stderr);
  } finally {
    h.cleanup();
  }
});

test('50 parallel ADDs never hand out one address twice; 50 parallel DELs leave nothing', async () => {
  const h = TestHost.create('cnipar');
  try {
    const net = { cniVersion: '1.0.0', name: 'pnet', type: 'nsnet', subnet: '10.82.0.0/24' };
    const nss = Array.from({ length: 50 }, () => runtimeNetns(h));
    const adds = await Promise.all(nss.map((ns, k) => cniAsync(h, { CNI_COMMAND: 'ADD', ...att(`p${k}`, ns) }, net)));
    adds.forEach((r, k) => ok(r, `ADD p${k}`));
    const ips = adds.map((r) => (r.json as { ips: Array<{ address: string }> }).ips[0].address);
    assert.equal(new Set(ips).size, 50, `no duplicate address: ${ips.join(' ')}`);
    nss.forEach((ns, k) => assert.deepEqual(addrIn(h, ns), [ips[k]]));
    let chk = h.nsnet(['check']);
    assert.equal(chk.status, 0, chk.stdout + chk.stderr);
    const dels = await Promise.all(nss.map((ns, k) => cniAsync(h, { CNI_COMMAND: 'DEL', ...att(`p${k}`, ns) }, net)));
    dels.forEach((r, k) => ok(r, `DEL p${k}`));
    assert.equal(psCni(h).length, 0);
    chk = h.nsnet(['check']);
    assert.equal(chk.status, 0, chk.stdout + chk.stderr);
  } finally {
    h.cleanup();
  }
});

test('kill -9 at every crash point of ADD and DEL, then the runtime retries (DEL, ADD): one attachment, nothing leaked', () => {
  const h = TestHost.create('cnikill');
  try {
    const net = { cniVersion: '1.0.0', name: 'knet', type: 'nsnet', subnet: '10.83.0.0/24', runtimeConfig: { portMappings: [{ hostPort: 18081, containerPort: 80, protocol: 'tcp' }] } };
    const ns = runtimeNetns(h);
    // Which points an ADD and a DEL pass (the network exists from here on, as for a runtime's later containers).
    ok(cni(h, { CNI_COMMAND: 'ADD', ...att('warm', runtimeNetns(h)) }, { ...net, runtimeConfig: {} }), 'first ADD');
    const trace = (cmd: string) => cni(h, { CNI_COMMAND: cmd, ...att('k', ns), NSNET_TRACE_POINTS: '1' }, net).stderr.split('\n')
      .filter((l) => l.startsWith('crashpoint cni-')).map((l) => l.slice('crashpoint '.length));
    const addPoints = trace('ADD');
    const delPoints = trace('DEL');
    assert.deepEqual(addPoints, ['cni-add:persisted', 'cni-add:attached', 'cni-add:committed', 'cni-add:firewall']);
    assert.deepEqual(delPoints, ['cni-del:netns', 'cni-del:persisted', 'cni-del:detached', 'cni-del:firewall']);
    const exactlyOne = (what: string) => {
      const rows = psCni(h).filter((c) => c.Names === 'cni-k');
      assert.equal(rows.length, 1, what);
      assert.equal(addrIn(h, ns).length, 1, `${what}: one address in the netns`);
      const nin = JSON.parse(h.ok(['network', 'inspect', 'knet']))[0];
      assert.equal(Object.keys(nin.Containers).length, 2, `${what}: two endpoints on the network (warm, k)`);
      const chk = h.nsnet(['check']);
      assert.equal(chk.status, 0, `${what}: ${chk.stdout}${chk.stderr}`);
      assert.match(must(h.sh('nft list map inet nsnet dnat_any'), 'nft').stdout, /18081/, `${what}: port published`);
    };
    for (const p of addPoints) {
      const r = cni(h, { CNI_COMMAND: 'ADD', ...att('k', ns), NSNET_CRASH_AT: p }, net);
      assert.notEqual(r.status, 0, `${p}: killed`);
      ok(cni(h, { CNI_COMMAND: 'DEL', ...att('k', ns) }, net), `${p}: DEL`);
      ok(cni(h, { CNI_COMMAND: 'ADD', ...att('k', ns) }, net), `${p}: ADD`);
      exactlyOne(`after a crash at ${p}`);
    }
    // The first ADD of a network creates it: a crash inside that creation, then the retry.
    for (const [k, p] of ['network-create:persisted', 'network-create:bridge', 'network-create:firewall'].entries()) {
      const fresh = { cniVersion: '1.0.0', name: `fresh${k}`, type: 'nsnet', subnet: `10.86.${k}.0/24` };
      const fns = runtimeNetns(h);
      assert.notEqual(cni(h, { CNI_COMMAND: 'ADD', ...att(`f${k}`, fns), NSNET_CRASH_AT: p }, fresh).status, 0, `${p}: killed`);
      ok(cni(h, { CNI_COMMAND: 'DEL', ...att(`f${k}`, fns) }, fresh), `${p}: DEL`);
      ok(cni(h, { CNI_COMMAND: 'ADD', ...att(`f${k}`, fns) }, fresh), `${p}: ADD`);
      assert.equal(addrIn(h, fns).length, 1, `${p}: one address`);
      assert.equal(JSON.parse(h.ok(['network', 'inspect', `fresh${k}`]))[0].IPAM.Config[0].Subnet, `10.86.${k}.0/24`);
      const chk = h.nsnet(['check']);
      assert.equal(chk.status, 0, `after a crash at ${p}: ${chk.stdout}${chk.stderr}`);
    }
    for (const p of delPoints) {
      const r = cni(h, { CNI_COMMAND: 'DEL', ...att('k', ns), NSNET_CRASH_AT: p }, net);
      assert.notEqual(r.status, 0, `${p}: killed`);
      ok(cni(h, { CNI_COMMAND: 'DEL', ...att('k', ns) }, net), `${p}: DEL`);
      ok(cni(h, { CNI_COMMAND: 'ADD', ...att('k', ns) }, net), `${p}: ADD`);
      exactlyOne(`after a crash at ${p}`);
    }
  } finally {
    h.cleanup();
  }
});

test('a configuration naming its state directory (`root`, no NSNET_ROOT) is served by that directory\'s helper', async () => {
  const h = TestHost.create('cniroot');
  try {
    const net = { cniVersion: '1.0.0', name: 'rnet', type: 'nsnet', subnet: '10.84.0.0/24', root: h.root };
    const noRoot = { NSNET_ROOT: undefined, NSNET_HELPER_TRACE: '1' };
    const first = ok(cni(h, { CNI_COMMAND: 'ADD', ...att('r0', runtimeNetns(h)), ...noRoot }, net), 'first ADD');
    assert.doesNotMatch(first.stderr, /served by the helper/, 'the first runs in-process (and starts the helper)');
    const sock = () => fs.existsSync(path.join(h.root, 'helper')) && fs.readdirSync(path.join(h.root, 'helper')).some((n) => n.endsWith('.sock'));
    for (let i = 0; i < 100 && !sock(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(sock(), 'a helper for the configuration\'s state directory');
    const second = ok(cni(h, { CNI_COMMAND: 'ADD', ...att('r1', runtimeNetns(h)), ...noRoot }, net), 'second ADD');
    assert.match(second.stderr, new RegExp(`served by the helper in ${h.root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/helper/`));
    const del = ok(cni(h, { CNI_COMMAND: 'DEL', ...att('r1', undefined), ...noRoot }, net), 'DEL');
    assert.match(del.stderr, /served by the helper/);
    assert.equal(psCni(h).length, 1, 'r0 left');
  } finally {
    h.cleanup();
  }
});
