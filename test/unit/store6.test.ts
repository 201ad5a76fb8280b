// Unit test of the store's dual-stack migration (issue #13): a state directory from before IPv6 keeps working (its
// networks and endpoints unchanged, no IPv6), and the schema itself refuses one IPv6 address twice on a network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { MIGRATIONS, Store } from '../../src/store/store.js';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3') as typeof BetterSqlite3;

test('a store from before IPv6 migrates: rows kept, IPv6 columns empty, UNIQUE(network_id, ip6), IPv4 address optional, one engine id', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-store6-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'nsnet.db');
  const mine = MIGRATIONS.findIndex((m) => m.includes('endpoints_v6'));
  assert.ok(mine > 0);
  // The schema as it was just before the dual-stack migration, with one network, one container, one endpoint.
  const old = new Database(file);
  for (const m of MIGRATIONS.slice(0, mine)) old.exec(m);
  old.pragma(`user_version = ${mine}`);
  old.exec(`INSERT INTO networks(id,name,driver,bridge,subnet,gateway,ip_range,internal,icc,mtu,is_default,labels,options,created)
    VALUES('n1','oa-net','bridge','nsbr-1','172.18.0.0/16','172.18.0.1',NULL,0,1,1500,0,'{}','{}','2026-01-01T00:00:00Z')`);
  old.exec(`INSERT INTO containers(id,name,mode,netns,command,ports,dns,auto_remove,state,created) VALUES('c1','web','bridge','nsnet-x-web','["sleep"]','[]','[]',0,'created','t')`);
  old.exec(`INSERT INTO endpoints(container_id,network_id,ifname,host_if,ip,mac,aliases,static_ip) VALUES('c1','n1','eth0','nsv1','172.18.0.2','02:42:ac:12:00:02','[]',0)`);
  old.close();

  const s = new Store(file);
  t.after(() => s.close());
  const n = s.networkById('n1')!;
  assert.equal(n.subnet, '172.18.0.0/16');
  assert.equal(n.enableIPv6, false);
  assert.equal(n.subnet6, null);
  const [e] = s.endpointsOf('c1');
  assert.equal(e.ip, '172.18.0.2');
  assert.equal(e.ip6, null);
  assert.equal(e.staticIp6, false);
  assert.ok(s.addressesOf('n1').has('172.18.0.2'), 'the IPv4 uniqueness index still answers');
  // A network with IPv6 and two endpoints: the second cannot take the first one's IPv6 address.
  s.insertNetwork({ ...n, id: 'n2', name: 'dual', bridge: 'nsbr-2', subnet: '10.0.0.0/24', gateway: '10.0.0.1', enableIPv6: true, subnet6: 'fd00::/64', gateway6: 'fd00::1', ipRange6: null }, false);
  s.insertContainer({ ...s.containerById('c1')!, id: 'c2', name: 'b', netns: 'nsnet-x-b' }, false);
  s.insertContainer({ ...s.containerById('c1')!, id: 'c3', name: 'c', netns: 'nsnet-x-c' }, false);
  const ep = { containerId: 'c2', containerName: 'b', networkId: 'n2', ifname: 'eth0', hostIf: 'nsv2', ip: '10.0.0.2', ip6: 'fd00::2', mac: '02:42:0a:00:00:02', aliases: [], staticIp: false, staticIp6: false };
  s.insertEndpoint(ep, false);
  assert.ok(s.addresses6Of('n2').has('fd00::2'));
  assert.throws(() => s.insertEndpoint({ ...ep, containerId: 'c3', containerName: 'c', hostIf: 'nsv3', ip: '10.0.0.3' }, false), /UNIQUE constraint failed: endpoints.network_id, endpoints.ip6/);
  // IPv6-only endpoints have no IPv4 address (NULL in the table: several of them on one network).
  s.insertNetwork({ ...n, id: 'n3', name: 'six', bridge: 'nsbr-3', subnet: '', gateway: '', enableIPv6: true, subnet6: 'fd01::/64', gateway6: 'fd01::1', ipRange6: null }, false);
  s.insertEndpoint({ ...ep, containerId: 'c2', networkId: 'n3', ifname: 'eth1', hostIf: 'nsv4', ip: '', ip6: 'fd01::2' }, false);
  s.insertEndpoint({ ...ep, containerId: 'c3', containerName: 'c', networkId: 'n3', hostIf: 'nsv5', ip: '', ip6: 'fd01::3' }, false);
  assert.deepEqual(s.endpointsOn('n3').map((x) => [x.ip, x.ip6]), [['', 'fd01::2'], ['', 'fd01::3']]);
  // An endpoint with no address at all is refused by the schema.
  assert.throws(() => s.insertEndpoint({ ...ep, containerId: 'c1', containerName: 'web', networkId: 'n3', hostIf: 'nsv6', ip: '', ip6: null }, false), /CHECK constraint failed/);
  // The engine id: made once, kept.
  const id = s.engineId();
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.equal(s.engineId(), id);
});
