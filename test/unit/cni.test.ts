// The CNI protocol's pure half (src/cni/protocol.ts): environment, configuration and runtimeConfig parsing with the
// spec's error codes, and the ADD result shaped per version.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addResult, CniError, CODES, compareVersions, configVersion, decodeConfig, errorResult, parseAliases, parseCniArgs,
  parseConfig, parseEnv, parseIps, parsePortMappings, SUPPORTED_VERSIONS, versionResult, type Attachment,
} from '../../src/cni/protocol.js';

function code(fn: () => unknown, want: number, msg?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CniError, `expected CniError, got ${String(e)}`);
    assert.equal(e.code, want, e.message);
    if (msg) assert.match(e.message + ' ' + e.details, msg);
    return true;
  });
}

const ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0' };

test('environment: commands, required variables per command, bad values are code 4 naming the variable', () => {
  assert.equal(parseEnv(ENV).command, 'ADD');
  code(() => parseEnv({ ...ENV, CNI_COMMAND: 'FOO' }), CODES.invalidEnv, /CNI_COMMAND/);
  code(() => parseEnv({ ...ENV, CNI_COMMAND: undefined }), CODES.invalidEnv, /CNI_COMMAND/);
  code(() => parseEnv({ ...ENV, CNI_NETNS: undefined }), CODES.invalidEnv, /CNI_NETNS/);
  code(() => parseEnv({ ...ENV, CNI_CONTAINERID: '' }), CODES.invalidEnv, /CNI_CONTAINERID/);
  code(() => parseEnv({ ...ENV, CNI_IFNAME: 'a/b' }), CODES.invalidEnv, /CNI_IFNAME/);
  code(() => parseEnv({ ...ENV, CNI_IFNAME: 'x'.repeat(16) }), CODES.invalidEnv, /CNI_IFNAME/);
  code(() => parseEnv({ ...ENV, CNI_CONTAINERID: '-abc' }), CODES.invalidEnv, /CNI_CONTAINERID/);
  code(() => parseEnv({ ...ENV, CNI_NETNS: 'relative' }), CODES.invalidEnv, /CNI_NETNS/);
  // DEL needs no netns (best effort after the runtime lost it); VERSION/STATUS/GC need no attachment.
  assert.equal(parseEnv({ ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: undefined }).netns, '');
  for (const c of ['VERSION', 'STATUS', 'GC']) assert.equal(parseEnv({ CNI_COMMAND: c }).command, c);
});

test('CNI_ARGS pairs', () => {
  assert.deepEqual(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.0.0.5'), { IgnoreUnknown: '1', K8S_POD_NAME: 'web', IP: '10.0.0.5' });
  assert.deepEqual(parseCniArgs(''), {});
  code(() => parseCniArgs('FOO'), CODES.invalidEnv, /CNI_ARGS/);
});

test('versions: supported list, incompatible is code 1, bad JSON code 6', () => {
  assert.deepEqual(versionResult('1.1.0'), { cniVersion: '1.1.0', supportedVersions: [...SUPPORTED_VERSIONS] });
  for (const v of SUPPORTED_VERSIONS) assert.equal(configVersion({ cniVersion: v }), v);
  code(() => configVersion({ cniVersion: '0.2.0' }), CODES.incompatibleVersion);
  code(() => configVersion({ cniVersion: '9.9.9' }), CODES.incompatibleVersion);
  code(() => configVersion({}), CODES.incompatibleVersion);
  code(() => decodeConfig(Buffer.from('{bad')), CODES.decode);
  code(() => decodeConfig(Buffer.from('[1]')), CODES.decode);
  assert.ok(compareVersions('0.4.0', '1.0.0') < 0 && compareVersions('1.1.0', '1.0.0') > 0 && compareVersions('0.3.1', '0.3.1') === 0);
  assert.deepEqual(errorResult('0.4.0', new CniError(7, 'm', 'd')), { cniVersion: '0.4.0', code: 7, msg: 'm', details: 'd' });
});

test('configuration keys and their validation', () => {
  const c = parseConfig({ cniVersion: '1.1.0', name: 'net1', type: 'nsnet', subnet: '10.1.0.0/24', mtu: 1400, icc: false, internal: true, ipMasq: false, root: '/tmp/x' }, { args: {} });
  assert.equal(c.subnet, '10.1.0.0/24');
  assert.equal(c.mtu, 1400);
  assert.equal(c.icc, false);
  assert.equal(c.root, '/tmp/x');
  code(() => parseConfig({ cniVersion: '1.1.0', name: '' }, { args: {} }), CODES.invalidConfig, /name/);
  code(() => parseConfig({ cniVersion: '1.1.0', name: 'a b' }, { args: {} }), CODES.invalidConfig, /name/);
  code(() => parseConfig({ cniVersion: '1.1.0', name: 'n', mtu: 'x' }, { args: {} }), CODES.invalidConfig, /mtu/);
  code(() => parseConfig({ cniVersion: '1.1.0', name: 'n', icc: 'no' }, { args: {} }), CODES.invalidConfig, /icc/);
  code(() => parseConfig({ cniVersion: '1.1.0', name: 'n', ipv6: 'fd00::/64' }, { args: {} }), CODES.unsupportedField, /ipv6/);
  code(() => parseConfig({ cniVersion: '1.1.0', name: 'n', ipMasq: false }, { args: {} }), CODES.unsupportedField, /ipMasq=false/);
  code(() => parseConfig({ cniVersion: '1.1.0', name: 'n', runtimeConfig: [] }, { args: {} }), CODES.invalidConfig, /runtimeConfig/);
  code(() => parseConfig({ cniVersion: '1.1.0', name: 'n', root: '' }, { args: {} }), CODES.invalidConfig, /root/);
  const gc = parseConfig({ cniVersion: '1.1.0', name: 'n', 'cni.dev/attachments': [{ containerID: 'a', ifname: 'eth0' }] }, { args: {} });
  assert.deepEqual(gc.validAttachments, [{ containerID: 'a', ifname: 'eth0' }]);
  code(() => parseConfig({ cniVersion: '1.1.0', name: 'n', 'cni.dev/valid-attachments': [{ containerID: 1 }] }, { args: {} }), CODES.invalidConfig);
});

test('runtimeConfig: portMappings, ips (and CNI_ARGS IP), mac (and CNI_ARGS MAC), dns, aliases in both forms', () => {
  assert.deepEqual(parsePortMappings([{ hostPort: 8080, containerPort: 80, protocol: 'TCP', hostIP: '0.0.0.0' }, { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' }]), [
    { hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' }, { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
  ]);
  code(() => parsePortMappings([{ hostPort: 0, containerPort: 80 }]), CODES.invalidConfig, /hostPort/);
  code(() => parsePortMappings([{ hostPort: 1, containerPort: 80, protocol: 'sctp' }]), CODES.unsupportedField, /sctp/);
  code(() => parsePortMappings([{ hostPort: 1, containerPort: 80, hostIP: '::1' }]), CODES.unsupportedField, /hostIP/);
  assert.deepEqual(parseIps(['10.0.0.5/24'], undefined), ['10.0.0.5/24']);
  assert.deepEqual(parseIps(undefined, '10.0.0.6'), ['10.0.0.6']);
  code(() => parseIps(['10.0.0.5', '10.0.0.6'], undefined), CODES.unsupportedField);
  code(() => parseIps(['fd00::5'], undefined), CODES.unsupportedField, /IPv4/);
  code(() => parseIps(['10.0.0.300'], undefined), CODES.invalidConfig);
  const c = parseConfig({ cniVersion: '1.0.0', name: 'n', runtimeConfig: { mac: '02:11:22:33:44:55', dns: { servers: ['10.0.0.53'], searches: ['corp'] }, aliases: { n: ['db'], other: ['x'] } } }, { args: {} });
  assert.equal(c.mac, '02:11:22:33:44:55');
  assert.deepEqual(c.dns, { servers: ['10.0.0.53'], searches: ['corp'], options: [] });
  assert.deepEqual(c.aliases, ['db']);
  assert.equal(parseConfig({ cniVersion: '1.0.0', name: 'n' }, { args: { MAC: '02:aa:bb:cc:dd:ee' } }).mac, '02:aa:bb:cc:dd:ee');
  code(() => parseConfig({ cniVersion: '1.0.0', name: 'n', runtimeConfig: { mac: '01:00:00:00:00:00' } }, { args: {} }), CODES.invalidConfig, /unicast/);
  assert.deepEqual(parseAliases(['a', 'b'], 'n'), ['a', 'b']);
  assert.deepEqual(parseAliases({ m: ['a'] }, 'n'), []);
  code(() => parseAliases('a', 'n'), CODES.invalidConfig);
});

const A: Attachment = {
  bridge: { name: 'br0', mac: '02:42:0a:00:00:01', mtu: 1500 }, host: { name: 'nsv1', mac: '12:00:00:00:00:01', mtu: 1500 },
  container: { name: 'eth0', mac: '02:42:0a:00:00:02', mtu: 1500, sandbox: '/run/netns/c' },
  address: '10.0.0.2', prefix: 24, gateway: '10.0.0.1', defaultRoute: true, nameservers: ['10.0.0.1'], search: [], options: [],
};

test('ADD result per version: ips[].version before 1.0.0, interface mtu from 1.1.0, prevResult passed through', () => {
  for (const v of SUPPORTED_VERSIONS) {
    const r = addResult(v, A) as { cniVersion: string; interfaces: Array<Record<string, unknown>>; ips: Array<Record<string, unknown>>; routes: unknown[]; dns: unknown };
    assert.equal(r.cniVersion, v);
    assert.equal(r.interfaces.length, 3);
    assert.equal(r.interfaces[2].sandbox, '/run/netns/c');
    assert.equal(r.ips[0].interface, 2);
    assert.equal(r.ips[0].address, '10.0.0.2/24');
    assert.equal('version' in r.ips[0], compareVersions(v, '1.0.0') < 0, v);
    assert.equal('mtu' in r.interfaces[0], v === '1.1.0', v);
    assert.deepEqual(r.routes, [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }]);
    assert.deepEqual(r.dns, { nameservers: ['10.0.0.1'] });
  }
  const prev = { interfaces: [{ name: 'x' }], ips: [{ address: '1.2.3.4/32', interface: 0 }], routes: [] };
  const r = addResult('1.0.0', { ...A, defaultRoute: false }, prev) as { interfaces: unknown[]; ips: Array<{ interface: number }>; routes: unknown[] };
  assert.equal(r.interfaces.length, 4);
  assert.deepEqual(r.ips.map((i) => i.interface), [0, 3]);
  assert.deepEqual(r.routes, []);
});
