// `nsnet up` / `nsnet down` with a Compose file: made as Compose names things, names resolving to every replica,
// converging (a second up changes nothing, a changed service alone is re-created), down removing exactly the
// project's objects, a bad file refused before anything is made.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { NSNET, TestHost } from '../helpers/host.js';

const FILE = (apiCmd: string) => `
name: lab
services:
  db:
    image: postgres:16
    command: sleep 300
    networks:
      back:
        aliases: [database]
    healthcheck:
      test: ["CMD", "true"]
      interval: 200ms
      retries: 3
  api:
    command: ${apiCmd}
    deploy:
      replicas: 2
    environment:
      MODE: test
    networks: [back, front]
    depends_on:
      db:
        condition: service_healthy
  edge:
    command: sleep 300
    ports: ["18080:80"]
    networks: [front]
networks:
  back:
    internal: true
    ipam:
      config:
        - subnet: 10.71.0.0/24
  front: {}
`;

test('up/down: a project from a Compose file, converging, and removed exactly', async (t) => {
  const h = TestHost.create('top');
  t.after(() => h.cleanup());
  const dir = path.join(h.root, 'proj');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'compose.yaml'), FILE('sleep 300'));
  const inDir = (args: string) => h.sh(`cd ${dir} && NSNET_ROOT=${h.root} NSNET_RESOLV_CONF=/dev/null ${NSNET} ${args}`);
  h.ok(['run', '-d', '--name', 'other', '--', 'sleep', '300']); // not the project's: never touched
  const first = inDir('up -d');
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stderr, /WARNING: .*image "postgres:16" is ignored/);
  for (const l of ['Network lab_back  Created', 'Network lab_front  Created', 'Container lab-db-1  Healthy', 'Container lab-api-2  Started', 'Container lab-edge-1  Started']) {
    assert.ok(first.stdout.includes(l), `${l}\n${first.stdout}`);
  }
  const names = h.ok(['ps', '--format', '{{.Names}}']).split('\n').sort();
  assert.deepEqual(names, ['lab-api-1', 'lab-api-2', 'lab-db-1', 'lab-edge-1', 'other']);
  // Names: the service name resolves to every replica, aliases too; networks are PROJECT_NET.
  const api = h.exec('lab-edge-1', 'getent ahostsv4 api | cut -d" " -f1 | sort -u');
  assert.equal(api.stdout.trim().split('\n').length, 2, api.stdout + api.stderr);
  assert.equal(h.exec('lab-api-1', 'getent hosts database >/dev/null && echo ok').stdout.trim(), 'ok');
  assert.equal(h.exec('lab-api-1', 'echo $MODE').stdout.trim(), 'test');
  // A second up changes nothing.
  const again = inDir('up -d');
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stdout, /Created|Removed|Started/, again.stdout);
  // A changed service alone is re-created.
  fs.writeFileSync(path.join(dir, 'compose.yaml'), FILE('sleep 301'));
  const changed = inDir('up -d');
  assert.equal(changed.status, 0, changed.stderr);
  assert.match(changed.stdout, /Container lab-api-1  Removed/);
  assert.doesNotMatch(changed.stdout, /lab-db-1  (Removed|Started)|lab-edge-1  (Removed|Started)|Network/, changed.stdout);
  // down: exactly the project's objects.
  const down = inDir('down');
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(h.ok(['ps', '-a', '--format', '{{.Names}}']).split('\n'), ['other']);
  assert.doesNotMatch(h.ok(['network', 'ls', '--format', '{{.Name}}']), /lab_/);
  assert.equal(h.nsnet(['check']).status, 0);
  // A bad file: one error line, nothing made.
  fs.writeFileSync(path.join(dir, 'compose.yaml'), 'services:\n  a:\n    command: sleep 1\n    networks: [nope]\n');
  const bad = inDir('up -d');
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr, `Error: compose.yaml:4: services.a.networks[0]: no network "nope" under networks:\n`);
  assert.deepEqual(h.ok(['ps', '-a', '--format', '{{.Names}}']).split('\n'), ['other']);
});
