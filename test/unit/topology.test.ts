// The topology loader (src/topology/compose.ts): the networking subset of Compose to a validated model; every bad
// file is one error naming the file, the line and the key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { containerNames, loadTopology, parseDuration, shellWords } from '../../src/topology/compose.js';

const load = (text: string, project?: string) => loadTopology(text, { file: 'compose.yaml', dirName: 'My App', env: { FROM_ENV: 'yes' }, project });

test('topology: a three-node cluster with a private network, ports, aliases, healthcheck order and replicas', () => {
  const t = load(`
name: lab
services:
  db:
    image: postgres:16
    command: ["sleep", "300"]
    networks:
      back:
        aliases: [database]
        ipv4_address: 10.70.0.10
    healthcheck:
      test: ["CMD-SHELL", "true"]
      interval: 1s
      retries: 5
  api:
    entrypoint: /usr/bin/env
    command: sh -c 'echo "hi there"; sleep 300'
    environment:
      MODE: test
      FROM_ENV:
      MISSING:
    working_dir: /tmp
    ports:
      - "8080:80"
      - target: 53
        published: "5353"
        host_ip: 127.0.0.1
        protocol: udp
    networks: [back, default]
    depends_on:
      db:
        condition: service_healthy
  worker:
    command: sleep 300
    deploy:
      replicas: 3
    network_mode: service:api
networks:
  back:
    internal: true
    ipam:
      config:
        - subnet: 10.70.0.0/24
          gateway: 10.70.0.1
    driver_opts:
      com.docker.network.driver.mtu: 1400
x-anything: ignored
`);
  assert.equal(t.project, 'lab');
  assert.deepEqual(t.services.map((s) => s.name), ['db', 'api', 'worker'], 'depends_on order');
  assert.deepEqual(t.networks.map((n) => [n.key, n.name, n.internal, n.subnet ?? null]), [['back', 'lab_back', true, '10.70.0.0/24'], ['default', 'lab_default', false, null]]);
  assert.deepEqual(t.networks[0].options, { 'com.docker.network.driver.mtu': '1400' });
  const [db, api, worker] = t.services;
  assert.deepEqual(db.networks, [{ key: 'back', aliases: ['database'], ipv4Address: '10.70.0.10' }]);
  assert.deepEqual(db.healthcheck, { test: ['/bin/sh', '-c', 'true'], intervalMs: 1000, timeoutMs: 30000, retries: 5, startPeriodMs: 0 });
  assert.deepEqual(api.command, ['/usr/bin/env', 'sh', '-c', 'echo "hi there"; sleep 300']);
  assert.deepEqual(api.environment, { MODE: 'test', FROM_ENV: 'yes' }, 'KEY without value: from the environment, dropped if unset');
  assert.deepEqual(api.ports, ['8080:80', '127.0.0.1:5353:53/udp']);
  assert.deepEqual(api.dependsOn, [{ service: 'db', condition: 'service_healthy' }]);
  assert.deepEqual(worker.networkMode, { kind: 'service', target: 'api' });
  assert.deepEqual(worker.dependsOn, [{ service: 'api', condition: 'service_started' }], 'a shared netns needs its owner first');
  assert.deepEqual(containerNames(t.project, worker), ['lab-worker-1', 'lab-worker-2', 'lab-worker-3']);
  assert.match(t.warnings[0], /image "postgres:16" is ignored/);
  assert.equal(load('services: {a: {command: x}}').project, 'myapp', 'the directory name, normalized');
  assert.equal(load('services: {a: {command: x}}', 'P-1').project, 'p-1');
});

test('topology: every bad file is one error with file, line and key, and nothing is guessed', () => {
  const cases: Array<[string, RegExp]> = [
    ['services:\n  a:\n    command: x\n    volumes: [./data:/data]\n', /^compose\.yaml:4: services\.a\.volumes: not supported by nsnet/],
    ['services:\n  a:\n    image: nginx\n', /^compose\.yaml:2: services\.a: command is required/],
    ['services:\n  a:\n    command: x\n    networks: [nope]\n', /^compose\.yaml:4: services\.a\.networks\[0\]: no network "nope"/],
    ['services:\n  a:\n    command: x\n    ports: ["99999:80"]\n', /^compose\.yaml:4: services\.a\.ports\[0\]: /],
    ['services:\n  a:\n    command: x\n    depends_on: [b]\n  b:\n    command: x\n    depends_on: [a]\n', /depends_on: a cycle: a -> b -> a/],
    ['services:\n  a:\n    command: x\n    depends_on: [ghost]\n', /^compose\.yaml:4: services\.a\.depends_on\[0\]: no service "ghost"/],
    ['services:\n  a:\n    command: x\n    networks:\n      n: {ipv4_address: 10.1.0.5}\n  b:\n    command: x\n    networks:\n      n: {ipv4_address: 10.1.0.5}\nnetworks:\n  n: {ipam: {config: [{subnet: 10.1.0.0/24}]}}\n', /^compose\.yaml:9: services\.b\.networks\.n\.ipv4_address: 10\.1\.0\.5 is already a's/],
    ['services:\n  a:\n    command: x\n    networks:\n      n: {ipv4_address: 10.1.0.5}\nnetworks:\n  n: {}\n', /^compose\.yaml:5: services\.a\.networks\.n\.ipv4_address: network n has no IPv4 subnet in its ipam config: a static address needs one/],
    ['services:\n  a:\n    command: x\n    networks:\n      n: {ipv4_address: 10.2.0.5}\nnetworks:\n  n: {ipam: {config: [{subnet: 10.1.0.0/24}]}}\n', /^compose\.yaml:5: services\.a\.networks\.n\.ipv4_address: no configured subnet or ip-range contain the IP address 10\.2\.0\.5/],
    ['services:\n  a:\n    command: x\n    network_mode: host\n    networks: [default]\n', /network_mode and networks cannot both be set/],
    ['services:\n  a:\n    command: x\n    deploy: {replicas: 2}\n    container_name: one\n', /container_name: a container name is for one replica only/],
    ['services:\n  a:\n    command: x\n    deploy: {resources: {limits: {cpus: "1"}}}\n', /services\.a\.deploy\.resources: not supported by nsnet/],
    ['services:\n  a:\n    command: 5\n', /^compose\.yaml:3: services\.a\.command: must be string/],
    ['services:\n  a:\n    command: x\nnetworks:\n  n:\n    driver: overlay\n', /^compose\.yaml:6: networks\.n\.driver: must be one of "bridge"/],
    ['services:\n  a:\n    command: x\n    x-netem: {delay: 50ms}\n', /services\.a\.x-netem: x-netem belongs under the service's network/],
    ['x-netem: {delay: 50ms}\nservices:\n  a:\n    command: x\n', /^compose\.yaml:1: x-netem: x-netem belongs under a service's network/],
    ['services:\n  a:\n    command: x\n    networks:\n      n: {x-netem: {loss: 120%}}\nnetworks:\n  n: {}\n', /^compose\.yaml:5: services\.a\.networks\.n\.x-netem: invalid --loss 120%: must be between 0% and 100%/],
    ['services:\n  a:\n    command: x\n    networks:\n      n: {x-netem: {delay: fast}}\nnetworks:\n  n: {}\n', /x-netem: invalid --delay fast: expected a duration/],
    ['services:\n  a:\n    command: x\n    networks:\n      n: {x-netem: {loss: 1}}\nnetworks:\n  n: {}\n', /x-netem\.loss: must be string/],
    ['services:\n  a:\n    command: x\n    networks:\n      n: {x-netem: {duration: 5s}}\nnetworks:\n  n: {}\n', /x-netem\.duration: not supported by nsnet/],
    ['services:\n  a:\n    command: x\n    networks:\n      n: {x-netem: {}}\nnetworks:\n  n: {}\n', /x-netem: no impairment given/],
    ['services:\n  a:\n    command: x\n    depends_on: {b: {condition: service_healthy}}\n  b:\n    command: x\n', /service b has no healthcheck to wait for/],
    ['services:\n  a:\n    command: x\n    healthcheck: {test: true, interval: soon}\n', /services\.a\.healthcheck\.test: must be/],
    ['services:\n  a:\n    command: "x \'unterminated"\n', /services\.a\.command: unterminated quote/],
    ['services:\n  a:\n    command: x\n  a:\n    command: y\n', /^compose\.yaml:4: Map keys must be unique/],
    ['volumes: {}\nservices: {a: {command: x}}\n', /^compose\.yaml:1: volumes: not supported by nsnet/],
    ['- a\n- b\n', /a topology file is a mapping/],
    ['networks: {}\n', /^compose\.yaml:1: missing services/],
  ];
  for (const [text, re] of cases) assert.throws(() => load(text), (e: Error) => re.test(e.message) && !e.message.includes('\n'), text);
});

test('topology: x-netem per service network, a service in `to` standing for its containers', () => {
  const t = load(`
name: lab
services:
  db:
    command: [sleep, "300"]
    deploy: {replicas: 2}
    networks:
      back:
        x-netem: {delay: 50ms, loss: 1%, rate: 10mbit, to: [web, 10.9.0.0/24]}
  web:
    command: [sleep, "300"]
    networks: [back]
networks:
  back: {}
`);
  const db = t.services.find((s) => s.name === 'db')!;
  assert.deepEqual(db.networks[0].netem, { delay: '50ms', loss: '1%', rate: '10mbit', to: ['lab-web-1', '10.9.0.0/24'] });
  assert.equal(t.services.find((s) => s.name === 'web')!.networks[0].netem, undefined);
});

test('topology: durations and command words as Compose reads them', () => {
  assert.equal(parseDuration('1m30s'), 90000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('soon'), null);
  assert.equal(parseDuration('10'), null, 'a unit is required');
  assert.deepEqual(shellWords(`sh -c 'a b' "c \\"d\\"" e\\ f ''`), ['sh', '-c', 'a b', 'c "d"', 'e f', '']);
});

const PART = (xp: string) => `
services:
  db1: {command: x, networks: [back]}
  db2: {command: x, networks: [back, front]}
  db3: {command: x, networks: [back], deploy: {replicas: 2}}
  web: {command: x, networks: [front]}
  off: {command: x, network_mode: host}
  none: {command: x, networks: [back], scale: 0}
networks:
  back: {}
  front: {}
  ext: {external: true, name: shared}
x-partitions:
${xp}`;

test('topology: x-partitions, groups of services on one network of the file', () => {
  const t = load(PART('  - network: back\n    groups: [[db1, db2], [db3]]\n  - network: front\n    groups: [web]\n    oneway: false\n'), 'lab');
  assert.deepEqual(t.partitions, [
    { network: 'back', groups: [['db1', 'db2'], ['db3']], oneway: false },
    { network: 'front', groups: [['web']], oneway: false }, // web against the rest (db2)
  ]);
  const one = load(PART('  - network: back\n    groups: [db1, [db3]]\n    oneway: true\n'), 'lab');
  assert.deepEqual(one.partitions, [{ network: 'back', groups: [['db1'], ['db3']], oneway: true }]);
  assert.deepEqual(load('services: {a: {command: x}}\n').partitions, []);
  // The default network, when a service is on it.
  const d = load('services: {a: {command: x}, b: {command: x}}\nx-partitions: [{network: default, groups: [[a], [b]]}]\n');
  assert.deepEqual(d.partitions, [{ network: 'default', groups: [['a'], ['b']], oneway: false }]);
});

test('topology: a bad x-partitions is one error naming the file, the line and the key', () => {
  const cases: Array<[string, RegExp]> = [
    ['  - network: nope\n    groups: [[db1]]\n', /^compose\.yaml:14: x-partitions\[0\]\.network: no network "nope" under networks:$/],
    ['  - network: ext\n    groups: [[db1]]\n', /^compose\.yaml:14: x-partitions\[0\]\.network: network ext is external/],
    ['  - network: back\n    groups: [[db1], [ghost]]\n', /^compose\.yaml:15: x-partitions\[0\]\.groups\[1\]\[0\]: no service "ghost"$/],
    ['  - network: back\n    groups: [[db1, db2], [db2]]\n', /^compose\.yaml:15: x-partitions\[0\]\.groups\[1\]\[0\]: service db2 is in two groups \(1 and 2\)/],
    ['  - network: back\n    groups: [[db1, db1]]\n', /x-partitions\[0\]\.groups\[0\]\[1\]: service db1 is listed twice in group 1$/],
    ['  - network: back\n    groups: [[db1], [web]]\n', /^compose\.yaml:15: x-partitions\[0\]\.groups\[1\]\[0\]: service web is not on network back$/],
    ['  - network: back\n    groups: [[db1], [off]]\n', /x-partitions\[0\]\.groups\[1\]\[0\]: service off is not on network back$/],
    ['  - network: back\n    groups: [[db1], [none]]\n', /x-partitions\[0\]\.groups\[1\]\[0\]: service none has no replicas/],
    ['  - network: back\n    groups: [[db1, db2, db3]]\n', /^compose\.yaml:15: x-partitions\[0\]\.groups: only one group on network back \(every service of it is listed in it\): nothing to cut/],
    ['  - network: back\n    groups: [[db1], [db2], [db3]]\n    oneway: true\n', /^compose\.yaml:16: x-partitions\[0\]\.oneway: a one-way partition has exactly two groups, FROM and TO .*not 3$/],
    ['  - network: back\n    groups: [[db1]]\n    oneway: true\n', /x-partitions\[0\]\.oneway: a one-way partition has exactly two groups.*not 1$/],
    ['  - network: back\n    groups: [[db1], [db3]]\n  - network: back\n    groups: [[db2], [db3]]\n', /^compose\.yaml:16: x-partitions\[1\]\.network: network back already has a partition \(x-partitions\[0\]\): one partition per network$/],
    ['  - network: back\n    groups: []\n', /^compose\.yaml:15: x-partitions\[0\]\.groups: give the groups/],
    ['  - network: back\n    groups: [[db1], []]\n', /x-partitions\[0\]\.groups\[1\]: group 2 is empty$/],
    ['  - network: back\n    groups: [[db1]]\n    duration: 30s\n', /^compose\.yaml:16: x-partitions\[0\]\.duration: not supported by nsnet/],
    ['  - network: back\n', /^compose\.yaml:14: x-partitions\[0\]: missing groups$/],
    ['  - network: back\n    groups: [[db1], [db3]]\n    oneway: yes please\n', /x-partitions\[0\]\.oneway: must be boolean$/],
    ['  - network: back\n    groups: [[1], [db3]]\n', /x-partitions\[0\]\.groups\[0\](\[0\])?: must be string/],
    ['  network: back\n', /^compose\.yaml:14: x-partitions: must be array$/],
  ];
  for (const [xp, re] of cases) {
    assert.throws(() => load(PART(xp), 'lab'), (e: Error) => {
      assert.match(e.message, re, xp);
      assert.ok(!e.message.includes('\n'), e.message);
      return true;
    });
  }
  // The default network with no service on it is no network of the file.
  assert.throws(() => load('services: {a: {command: x, networks: [n]}}\nnetworks: {n: {}}\nx-partitions: [{network: default, groups: [[a]]}]\n'),
    (e: Error) => /^compose\.yaml:3: x-partitions\[0\]\.network: no network "default" under networks: \(no service is on the default network\)$/.test(e.message));
});

// ---------------------------------------------------------------------------------------------- IPv6 (issue #13)
test('topology: IPv6 networks: enable_ipv6, one ipam entry per family, enable_ipv4: false, ipv6_address', () => {
  const t = load(`
name: lab
services:
  db:
    command: x
    networks:
      dual:
        ipv4_address: 10.80.0.10
        ipv6_address: fd00:80::10
      v6only:
        ipv6_address: "fd00:81::0:20"
  web:
    command: x
    networks: [dual, auto]
networks:
  dual:
    enable_ipv6: true
    ipam:
      config:
        - subnet: fd00:80::/64
          gateway: fd00:80::1
          ip_range: fd00:80::/80
        - subnet: 10.80.0.0/24
  v6only:
    enable_ipv6: true
    enable_ipv4: false
    ipam: {config: [{subnet: "fd00:81::/64"}]}
  auto:
    enable_ipv6: true
    driver_opts: {com.docker.network.bridge.gateway_mode_ipv6: routed}
  plain: {}
`);
  const by = new Map(t.networks.map((n) => [n.key, n]));
  const fam = (k: string) => {
    const n = by.get(k)!;
    return [n.enableIPv6, n.enableIPv4, n.subnet ?? null, n.gateway ?? null, n.ipRange ?? null, n.subnet6 ?? null, n.gateway6 ?? null, n.ipRange6 ?? null];
  };
  assert.deepEqual(fam('dual'), [true, true, '10.80.0.0/24', null, null, 'fd00:80::/64', 'fd00:80::1', 'fd00:80::/80'], 'entries sorted by family, whatever their order');
  assert.deepEqual(fam('v6only'), [true, false, null, null, null, 'fd00:81::/64', null, null]);
  assert.deepEqual(fam('auto'), [true, true, null, null, null, null, null, null], 'subnets of both families chosen by network create');
  assert.deepEqual(fam('plain'), [false, true, null, null, null, null, null, null]);
  const db = t.services.find((s) => s.name === 'db')!;
  assert.deepEqual(db.networks.map((n) => [n.key, n.ipv4Address ?? null, n.ipv6Address ?? null]), [['dual', '10.80.0.10', 'fd00:80::10'], ['v6only', null, 'fd00:81::0:20']]);
  const web = t.services.find((s) => s.name === 'web')!;
  assert.ok(web.networks.every((n) => !('ipv6Address' in n)), 'no ipv6_address, no key (the service hash made before IPv6 stays)');
});

test('topology: bad IPv6 input is one error with file, line and key, before anything is made', () => {
  const svc = (nets: string) => `services:\n  a:\n    command: x\n    networks:\n${nets}`;
  const cases: Array<[string, RegExp]> = [
    // Networks.
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    ipam:\n      config:\n        - subnet: fd00:1::/64\n',
      /^compose\.yaml:6: networks\.n\.ipam\.config\[0\]\.subnet: an IPv6 subnet needs enable_ipv6: true on the network$/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    enable_ipv6: true\n    ipam:\n      config:\n        - subnet: fd00:1::/64\n        - subnet: fd00:2::/64\n',
      /^compose\.yaml:8: networks\.n\.ipam\.config\[1\]\.subnet: a second IPv6 entry \(networks\.n\.ipam\.config\[0\] is one\): a network has at most one subnet per family$/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    ipam:\n      config:\n        - subnet: 10.1.0.0/24\n        - subnet: 10.2.0.0/24\n',
      /^compose\.yaml:7: networks\.n\.ipam\.config\[1\]\.subnet: a second IPv4 entry/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    enable_ipv4: false\n',
      /^compose\.yaml:4: networks\.n\.enable_ipv4: IPv4 and IPv6 cannot both be disabled: an IPv6-only network \(enable_ipv4: false\) needs enable_ipv6: true$/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    enable_ipv6: true\n    enable_ipv4: false\n    ipam: {config: [{subnet: 10.1.0.0/24}]}\n',
      /^compose\.yaml:6: networks\.n\.ipam\.config\[0\]\.subnet: an IPv4 subnet on a network with enable_ipv4: false$/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    enable_ipv6: true\n    ipam:\n      config:\n        - subnet: fd00:1::/64\n          gateway: fd00:2::1\n',
      /^compose\.yaml:8: networks\.n\.ipam\.config\[0\]\.gateway: invalid gateway fd00:2::1: parent subnet fd00:1::\/64 doesn't contain this address$/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    enable_ipv6: true\n    ipam: {config: [{subnet: "fd00:1::/64", ip_range: "fd00:9::/80"}]}\n',
      /^compose\.yaml:5: networks\.n\.ipam\.config\[0\]\.ip_range: invalid ip-range fd00:9::\/80: parent subnet fd00:1::\/64 doesn't contain ip-range$/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    enable_ipv6: true\n    ipam: {config: [{subnet: "fd00::/40"}]}\n',
      /networks\.n\.ipam\.config\[0\]\.subnet: invalid subnet fd00::\/40: too large, an IPv6 network may be at most a \/48$/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    enable_ipv6: true\n    ipam: {config: [{subnet: "fe80::/64"}]}\n',
      /networks\.n\.ipam\.config\[0\]\.subnet: invalid subnet fe80::\/64: overlaps the link-local block fe80::\/10$/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    enable_ipv6: true\n    ipam: {config: [{subnet: "fd00:1::5/64"}]}\n',
      /networks\.n\.ipam\.config\[0\]\.subnet: invalid subnet fd00:1::5\/64: host bits set, it should be fd00:1::\/64$/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    enable_ipv6: true\n    ipam: {config: [{gateway: "fd00:1::1"}]}\n',
      /^compose\.yaml:5: networks\.n\.ipam\.config\[0\]: every ip-range or gateway must have a corresponding subnet$/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    enable_ipv6: true\n    ipam: {config: [{subnet: 10.1.0.0/24, gateway: "fd00:1::1"}]}\n',
      /^compose\.yaml:5: networks\.n\.ipam\.config\[0\]\.gateway: fd00:1::1 is IPv6 and the entry's subnet 10\.1\.0\.0\/24 IPv4: one entry per family/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    ipam: {config: [{}]}\n', /^compose\.yaml:4: networks\.n\.ipam\.config\[0\]: an empty entry/],
    ['services: {a: {command: x}}\nnetworks:\n  m:\n    enable_ipv6: true\n    ipam: {config: [{subnet: "fd00:1::/64"}]}\n  n:\n    enable_ipv6: true\n    ipam: {config: [{subnet: "fd00:1::/56"}]}\n',
      /^compose\.yaml:8: networks\.n\.ipam\.config\[0\]\.subnet: fd00:1::\/56 overlaps network m's subnet fd00:1::\/64$/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    enable_ipv6: "yes"\n', /^compose\.yaml:4: networks\.n\.enable_ipv6: must be boolean$/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    external: true\n    enable_ipv6: true\n', /^compose\.yaml:3: networks\.n: an external network is used as it is/],
    ['services: {a: {command: x}}\nnetworks:\n  n:\n    driver_opts: {com.docker.network.bridge.gateway_mode_ipv6: routed}\n',
      /^compose\.yaml:4: networks\.n\.driver_opts\.com\.docker\.network\.bridge\.gateway_mode_ipv6: needs enable_ipv6: true on the network$/],
    // Static addresses.
    [svc('      n: {ipv6_address: "fd00:1::10"}\nnetworks:\n  n: {}\n'),
      /^compose\.yaml:5: services\.a\.networks\.n\.ipv6_address: network n has no IPv6: set enable_ipv6: true on it \(networks\.n\)$/],
    [svc('      n: {ipv6_address: "fd00:1::10"}\nnetworks:\n  n: {enable_ipv6: true}\n'),
      /^compose\.yaml:5: services\.a\.networks\.n\.ipv6_address: network n has no IPv6 subnet in its ipam config: a static address needs one/],
    [svc('      n: {ipv6_address: "fd00:2::10"}\nnetworks:\n  n: {enable_ipv6: true, ipam: {config: [{subnet: "fd00:1::/64"}]}}\n'),
      /^compose\.yaml:5: services\.a\.networks\.n\.ipv6_address: no configured subnet or ip-range contain the IP address fd00:2::10 \(the network's subnet is fd00:1::\/64\)$/],
    [svc('      n: {ipv6_address: "fd00:1::1"}\nnetworks:\n  n: {enable_ipv6: true, ipam: {config: [{subnet: "fd00:1::/64"}]}}\n'),
      /services\.a\.networks\.n\.ipv6_address: Address already in use: fd00:1::1 is the network's gateway$/],
    [svc('      n: {ipv6_address: 10.1.0.5}\nnetworks:\n  n: {enable_ipv6: true, ipam: {config: [{subnet: "fd00:1::/64"}]}}\n'),
      /services\.a\.networks\.n\.ipv6_address: not an IPv6 address: "10\.1\.0\.5" \(an IPv4 address is given with ipv4_address\)$/],
    [svc('      n: {ipv4_address: "fd00:1::5"}\nnetworks:\n  n: {enable_ipv6: true, ipam: {config: [{subnet: "fd00:1::/64"}]}}\n'),
      /services\.a\.networks\.n\.ipv4_address: not an IPv4 address: "fd00:1::5" \(an IPv6 address is given with ipv6_address\)$/],
    [svc('      n: {ipv4_address: 10.1.0.5}\nnetworks:\n  n: {enable_ipv6: true, enable_ipv4: false}\n'),
      /^compose\.yaml:5: services\.a\.networks\.n\.ipv4_address: network n has no IPv4 \(enable_ipv4: false\)$/],
    [svc('      n: {ipv6_address: "fd00:1::10"}\n    scale: 2\nnetworks:\n  n: {enable_ipv6: true, ipam: {config: [{subnet: "fd00:1::/64"}]}}\n'),
      /services\.a\.networks\.n\.ipv6_address: a static address is for one replica only$/],
    [svc('      n: {ipv6_address: "fd00:1::a"}\n  b:\n    command: x\n    networks:\n      n: {ipv6_address: "fd00:1:0::0a"}\nnetworks:\n  n: {enable_ipv6: true, ipam: {config: [{subnet: "fd00:1::/64"}]}}\n'),
      /^compose\.yaml:9: services\.b\.networks\.n\.ipv6_address: fd00:1:0::0a is already a's on network n$/],
    [svc('      n: {ipv6_address: 5}\nnetworks:\n  n: {enable_ipv6: true}\n'), /services\.a\.networks\.n\.ipv6_address: must be string$/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => load(text), (e: Error) => {
      assert.match(e.message, re, text);
      assert.ok(!e.message.includes('\n'), e.message);
      return true;
    });
  }
  // An external network's subnets are not in the file: an ipv6_address on it is the engine's to check.
  const ext = load(svc('      n: {ipv6_address: "fd00:1::10"}\nnetworks:\n  n: {external: true, name: shared}\n'));
  assert.equal(ext.services[0].networks[0].ipv6Address, 'fd00:1::10');
});

test('topology: what up makes of a network\'s families, and the hash of an IPv4-only network unchanged by IPv6', async () => {
  const { createOptions, networkSpec } = await import('../../src/engine/topology.js');
  const t = load(`
name: lab
services: {a: {command: x, networks: [v4, dual, v6only, auto]}}
networks:
  v4: {ipam: {config: [{subnet: 10.90.0.0/24, gateway: 10.90.0.254}]}}
  dual:
    enable_ipv6: true
    ipam: {config: [{subnet: "fd00:90::/64", gateway: "fd00:90::fe"}, {subnet: 10.91.0.0/24, ip_range: 10.91.0.128/25}]}
  v6only: {enable_ipv6: true, enable_ipv4: false, ipam: {config: [{subnet: "fd00:92::/64"}]}}
  auto: {enable_ipv6: true}
`);
  const by = new Map(t.networks.map((n) => [n.key, n]));
  // The spec an IPv4-only network was hashed from before IPv6, key for key (a second up re-creates nothing).
  assert.deepEqual(networkSpec(by.get('v4')!), { name: 'lab_v4', internal: false, subnet: '10.90.0.0/24', gateway: '10.90.0.254', ipRange: null, options: {}, labels: {} });
  assert.deepEqual(networkSpec(by.get('dual')!), {
    name: 'lab_dual', internal: false, subnet: '10.91.0.0/24', gateway: null, ipRange: '10.91.0.128/25', options: {}, labels: {},
    ipv6: true, ipv4: true, subnet6: 'fd00:90::/64', gateway6: 'fd00:90::fe', ipRange6: null,
  });
  assert.notDeepEqual(networkSpec(by.get('v6only')!), networkSpec({ ...by.get('v6only')!, subnet6: 'fd00:93::/64' }), 'another IPv6 subnet: another network');
  assert.notDeepEqual(networkSpec(by.get('auto')!), networkSpec({ ...by.get('auto')!, enableIPv6: false }), 'enable_ipv6 changed: another network');
  assert.deepEqual(createOptions(by.get('v4')!), { name: 'lab_v4', internal: false, options: {}, subnet: '10.90.0.0/24', gateway: '10.90.0.254', ipRange: undefined });
  assert.deepEqual(createOptions(by.get('dual')!), {
    name: 'lab_dual', internal: false, options: {}, ipv6: true, ipv4: true,
    subnets: ['10.91.0.0/24', 'fd00:90::/64'], gateways: ['fd00:90::fe'], ipRanges: ['10.91.0.128/25'],
  });
  assert.deepEqual(createOptions(by.get('v6only')!), { name: 'lab_v6only', internal: false, options: {}, ipv6: true, ipv4: false, subnets: ['fd00:92::/64'], gateways: [], ipRanges: [] });
  assert.deepEqual(createOptions(by.get('auto')!), { name: 'lab_auto', internal: false, options: {}, ipv6: true, ipv4: true, subnets: [], gateways: [], ipRanges: [] });
});
