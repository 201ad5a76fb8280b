import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PortMapping } from '../../src/types.js';
import { UserError } from '../../src/util/errors.js';
import {
  DEFAULT_MAX_PORTS, checkPortCount, formatPortSpec, maxPorts, parsePortSpec, type PortSpec,
} from '../../src/util/ports.js';

function throwsUser(fn: () => unknown, msg: string, label = msg): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `${label}: expected UserError, got ${String(e)}`);
    assert.ok(e.message.includes(msg), `${label}: message ${JSON.stringify(e.message)} lacks ${JSON.stringify(msg)}`);
    assert.equal(e.code, 'invalid');
    assert.ok(!/[\n\r]/.test(e.message), 'message must be one line');
    return true;
  }, label);
}

function spec(hostIp: string, hostPort: number | null, hostPortEnd: number | null, containerPort: number, containerPortEnd: number, proto: 'tcp' | 'udp' = 'tcp'): PortSpec {
  return { hostIp, hostPort, hostPortEnd, containerPort, containerPortEnd, proto } as PortSpec;
}

test('parsePortSpec: the forms Docker accepts', () => {
  const cases: Array<[string, PortSpec]> = [
    ['80', spec('', null, null, 80, 80)],
    ['80/tcp', spec('', null, null, 80, 80)],
    ['53/udp', spec('', null, null, 53, 53, 'udp')],
    ['53/UDP', spec('', null, null, 53, 53, 'udp')],
    ['80/Tcp', spec('', null, null, 80, 80)],
    ['8080:80', spec('', 8080, 8080, 80, 80)],
    ['8080:80/udp', spec('', 8080, 8080, 80, 80, 'udp')],
    ['127.0.0.1:8080:80', spec('127.0.0.1', 8080, 8080, 80, 80)],
    ['10.1.2.3:53:53/udp', spec('10.1.2.3', 53, 53, 53, 53, 'udp')],
    ['0.0.0.0:8080:80', spec('', 8080, 8080, 80, 80)],
    ['127.0.0.1::80', spec('127.0.0.1', null, null, 80, 80)],
    ['0.0.0.0::80', spec('', null, null, 80, 80)],
    [':8080:80', spec('', 8080, 8080, 80, 80)],
    ['::80', spec('', null, null, 80, 80)],
    ['[2001:db8::1]:8080:80', spec('2001:db8::1', 8080, 8080, 80, 80)],
    ['[2001:DB8:0::1]::80/udp', { ...spec('2001:db8::1', null, null, 80, 80), proto: 'udp' }],
    [':80', spec('', null, null, 80, 80)],
    ['0:80', spec('', null, null, 80, 80)],
    ['127.0.0.1:0:80', spec('127.0.0.1', null, null, 80, 80)],
    ['8000-8010:80-90', spec('', 8000, 8010, 80, 90)],
    ['127.0.0.1:8000-8002:7000-7002/udp', spec('127.0.0.1', 8000, 8002, 7000, 7002, 'udp')],
    ['80-90', spec('', null, null, 80, 90)],
    ['7000-7000', spec('', null, null, 7000, 7000)],
    ['1:1', spec('', 1, 1, 1, 1)],
    ['65535:65535', spec('', 65535, 65535, 65535, 65535)],
    ['1-65535:1-65535', spec('', 1, 65535, 1, 65535)],
    ['08080:080', spec('', 8080, 8080, 80, 80)],
    ['8080-8080:80', spec('', 8080, 8080, 80, 80)],
  ];
  for (const [s, want] of cases) assert.deepEqual(parsePortSpec(s), want, s);
});

test('parsePortSpec: refuses bad and hostile specs with the reason', () => {
  const cases: Array<[string, string]> = [
    ['', 'invalid port spec "": no port specified'],
    [' ', 'invalid port spec " ": must not contain whitespace'],
    ['80 ', 'must not contain whitespace'],
    ['8080: 80', 'must not contain whitespace'],
    ['80\n', 'must not contain whitespace'],
    ['/tcp', 'invalid port spec /tcp: no container port specified'],
    ['8080:', 'invalid port spec 8080:: no container port specified'],
    ['8080:/udp', 'no container port specified'],
    ['0', 'invalid containerPort: 0 (ports are 1-65535)'],
    ['8080:0', 'invalid containerPort: 0'],
    ['65536', 'invalid containerPort: 65536 (ports are 1-65535)'],
    ['99999', 'invalid containerPort: 99999'],
    ['999999', 'invalid containerPort: 999999 (expected a port 1-65535 or a range like 8000-8010)'],
    ['-1', 'invalid containerPort: -1 (expected a port'],
    ['-80', 'invalid containerPort: -80'],
    ['+80', 'invalid containerPort: +80'],
    ['80-', 'invalid containerPort: 80-'],
    ['80-90-100', 'invalid containerPort: 80-90-100'],
    ['80-70', 'invalid containerPort: 80-70 (the range ends before it starts)'],
    ['9000-8000:80-90', 'invalid hostPort: 9000-8000 (the range ends before it starts)'],
    ['1e3', 'invalid containerPort: 1e3'],
    ['0x50', 'invalid containerPort: 0x50'],
    ['80.0', 'invalid containerPort: 80.0'],
    ['http', 'invalid containerPort: http'],
    ['８０', 'invalid containerPort: "８０"'],
    ['80/sctp', 'invalid port spec 80/sctp: protocol sctp is not supported (only tcp and udp)'],
    ['80/icmp', 'invalid proto: icmp (expected tcp or udp)'],
    ['80/', 'invalid proto: "" (expected tcp or udp)'],
    ['80/tcp/udp', 'invalid proto: tcp/udp'],
    ['abc:80', 'invalid hostPort: abc'],
    ['0-10:80-90', 'invalid hostPort: 0-10 (ports are 1-65535)'],
    ['00:80', 'invalid hostPort: 00 (ports are 1-65535)'],
    ['70000:80', 'invalid hostPort: 70000'],
    ['-1:80', 'invalid hostPort: -1'],
    ['80/tcp:80', 'invalid hostPort: 80/tcp'],
    ['127.0.0.1:80', 'invalid hostPort: 127.0.0.1 (to publish on one host address write 127.0.0.1::80 or 127.0.0.1:HOSTPORT:80)'],
    ['localhost:8080:80', 'invalid IP address: localhost (expected an IPv4 address of the host)'],
    ['256.0.0.1:8080:80', 'invalid IP address: 256.0.0.1'],
    ['01.2.3.4:8080:80', 'invalid IP address: 01.2.3.4'],
    ['127.1:8080:80', 'invalid IP address: 127.1'],
    ['[::1]:80:80', 'invalid port spec [::1]:80:80: [::1] cannot be published: IPv6 has no route_localnet'],
    ['[::]:80:80', '[::] is not supported: publish on every address'],
    ['[fe80::1', 'an IPv6 host address is written [ADDRESS]:HOSTPORT:CPORT'],
    ['[2001:db8::1]80:80', 'an IPv6 host address is written [ADDRESS]:HOSTPORT:CPORT'],
    ['[2001:db8::zz]:80:80', 'invalid IPv6 address: 2001:db8::zz'],
    ['[10.0.0.1]:80:80', 'invalid IPv6 address: 10.0.0.1'],
    ['[2001:db8::1]:80', 'expected [ADDRESS]:HOSTPORT:CPORT'],
    ['2001:db8::1]:80:80', 'an IPv6 host address is written [ADDRESS]:HOSTPORT:CPORT'],
    ['::1:80:80', 'too many colons'],
    ['1:2:3:4', 'too many colons'],
    ['8000-8010:80', 'a host port range needs a container port range of the same length (choosing one free port of a host range is not supported)'],
    ['8000-8010:80-85', 'invalid ranges specified for container and host Ports: 80-85 and 8000-8010 (they must have the same length)'],
    ['8080:80-90', 'invalid ranges specified for container and host Ports: 80-90 and 8080'],
    ['x'.repeat(10000), '(10000 characters)'],
  ];
  for (const [s, msg] of cases) throwsUser(() => parsePortSpec(s), msg, JSON.stringify(s).slice(0, 40));
});

function pm(hostIp: string, hostPort: number, hostPortEnd: number, containerPort: number, containerPortEnd: number, proto: 'tcp' | 'udp' = 'tcp'): PortMapping {
  return { hostIp, hostPort, hostPortEnd, containerPort, containerPortEnd, proto };
}

test('formatPortSpec: the -p spec of a mapping, which parses back to it', () => {
  const cases: Array<[PortMapping, string]> = [
    [pm('', 8088, 8088, 8080, 8080), '8088:8080/tcp'],
    [pm('127.0.0.1', 53, 53, 53, 53, 'udp'), '127.0.0.1:53:53/udp'],
    [pm('', 8000, 8010, 80, 90), '8000-8010:80-90/tcp'],
    [pm('2001:db8::1', 8082, 8082, 80, 80), '[2001:db8::1]:8082:80/tcp'],
  ];
  for (const [m, specText] of cases) {
    assert.equal(formatPortSpec(m), specText);
    assert.deepEqual(parsePortSpec(specText), m);
  }
});

test('checkPortCount: a cap on published ports per container (default 1000, NSNET_MAX_PORTS overrides)', () => {
  const specs = (...ss: string[]) => ss.map((x) => ({ spec: x, parsed: parsePortSpec(x) }));
  assert.equal(DEFAULT_MAX_PORTS, 1000);
  assert.equal(maxPorts({}), 1000);
  assert.equal(maxPorts({ NSNET_MAX_PORTS: '65535' }), 65535);
  for (const bad of ['0', '-1', '65536', 'lots', '1e3']) throwsUser(() => maxPorts({ NSNET_MAX_PORTS: bad }), 'invalid NSNET_MAX_PORTS');
  checkPortCount(specs('1000-1999:1000-1999'), 1000); // exactly the cap
  checkPortCount(specs('54-65535'), 65535);
  throwsUser(() => checkPortCount(specs('54-65535'), 1000), 'publishes 65482 ports, more than the limit of 1000 per container (set NSNET_MAX_PORTS');
  throwsUser(() => checkPortCount(specs('1000-1999:1000-1999', '80'), 1000), 'too many published ports');
  checkPortCount(specs('80', '443', '53/udp'), 3);
  throwsUser(() => checkPortCount(specs('80', '443', '53/udp'), 2), 'more than the limit of 2');
});
