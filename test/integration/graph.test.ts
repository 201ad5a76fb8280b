// `nsnet graph`: the page drawn for a real host (50 containers on 5 networks), opened in a real browser (headless
// Chromium, Debian `chromium`): every container, network and veth is in its DOM, a veth deleted behind nsnet's
// back is drawn as a difference, and a screenshot is saved for a person to look at.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { TestHost, must } from '../helpers/host.js';

const CHROMIUM = '/usr/bin/chromium';

function chromium(args: string[], profile: string): string {
  const r = spawnSync(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, ...args], { encoding: 'utf8', timeout: 90000, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `chromium: ${r.error ?? ''} ${r.stderr}`);
  return r.stdout;
}

test('graph: 50 containers on 5 networks in a real browser, with a difference drawn in red', async (t) => {
  const h = TestHost.create('grf');
  t.after(() => h.cleanup());
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-graph-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  for (let n = 0; n < 5; n++) h.ok(['network', 'create', ...(n === 4 ? ['--internal'] : []), `net${n}`]);
  for (let i = 0; i < 50; i++) {
    const n = i % 5;
    h.ok(['create', '--network', `net${n}`, '--name', `c${i}`, ...(i < 3 ? ['-p', `${18000 + i}:80`] : []), '--', 'sleep', '300']);
  }
  h.ok(['network', 'connect', 'net1', 'c0']);
  // Behind nsnet's back: one veth deleted (check reports it; the graph must show it).
  const links = JSON.parse(must(h.sh('ip -j link show'), 'ip link').stdout) as Array<{ ifname: string; ifalias?: string }>;
  const veths = links.filter((l) => l.ifname.startsWith('nsv'));
  assert.equal(veths.length, 51, 'one veth per endpoint');
  const gone = veths[7].ifname;
  must(h.sh(`ip link del ${gone}`), 'ip link del');

  const page = path.join(tmp, 'nsnet.html');
  h.ok(['graph', '-o', page]);
  const dom = chromium(['--virtual-time-budget=5000', '--dump-dom', `file://${page}`], path.join(tmp, 'p1'));
  const count = (re: RegExp) => (dom.match(re) ?? []).length;
  assert.equal(count(/data-kind="container"/g), 50, 'every container');
  assert.equal(count(/data-kind="bridge"/g), 5, 'every network');
  assert.equal(count(/data-kind="veth"/g), 51, 'every veth pair the store knows');
  assert.equal(count(/data-kind="publish"/g), 3, 'every published port');
  assert.equal(count(/data-kind="masquerade"/g), 4, 'no masquerade for the internal network');
  assert.ok(dom.includes(`<g class="edge veth diff" data-id="veth:${gone}"`), 'the deleted veth is drawn as a difference');
  assert.match(dom, new RegExp(`<li>missing-veth: c\\d+: ${gone}</li>`), 'and listed with the differences check reports');
  for (let i = 0; i < 50; i++) assert.ok(dom.includes(`>c${i}</text>`), `c${i} is drawn`);
  // Hover/click data are in the page itself.
  assert.match(dom, /<script id="nsnet-data" type="application\/json">\{"host":/);
  const shot = path.join(os.tmpdir(), 'nsnet-graph-50-containers.png');
  chromium(['--window-size=1800,1400', `--screenshot=${shot}`, `file://${page}`], path.join(tmp, 'p2'));
  assert.ok(fs.statSync(shot).size > 20000, 'a screenshot with something in it');
  t.diagnostic(`screenshot: ${shot}`);

  // The other formats, a filter, and bad input.
  assert.match(h.ok(['graph', '--format', 'dot']), /^digraph nsnet \{/);
  assert.match(h.ok(['graph', '--format', 'mermaid', '--network', 'net4']), /network net4 \(internal\)/);
  assert.doesNotMatch(h.ok(['graph', '--format', 'mermaid', '--network', 'net4']), /network net0/);
  assert.equal(JSON.parse(h.ok(['graph', '--format', 'json'])).nodes.filter((n: { kind: string }) => n.kind === 'container').length, 50);
  const bad = h.nsnet(['graph', '--format', 'png']);
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr, 'Error: unknown --format "png" (html, svg, dot, mermaid, json)\n');
  const none = h.nsnet(['graph', '--network', 'nope']);
  assert.equal(none.status, 1);
  assert.equal(none.stderr, 'Error: network nope not found\n');
});

test('graph: the seed scenario (oa-net: redis-sys, postgres, oa-java with 8088 published, NAT out) in a real browser, with a fault and a partition drawn', async (t) => {
  const h = TestHost.create('grs');
  t.after(() => h.cleanup());
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-graph-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  h.ok(['network', 'create', 'oa-net']);
  for (const n of ['redis-sys', 'postgres']) h.ok(['run', '-d', '--name', n, '--network', 'oa-net', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'oa-java', '--network', 'oa-net', '-p', '8088:8088', '--', 'sleep', '300']);
  h.ok(['netem', 'postgres', '--delay', '20ms']);
  h.ok(['partition', '--network', 'oa-net', 'redis-sys']);
  const page = path.join(tmp, 'seed.html');
  h.ok(['graph', '-o', page]);
  const dom = chromium(['--virtual-time-budget=5000', '--dump-dom', `file://${page}`], path.join(tmp, 'p1'));
  for (const n of ['redis-sys', 'postgres', 'oa-java']) assert.ok(dom.includes(`>${n}</text>`), `${n} is drawn`);
  assert.equal((dom.match(/data-kind="publish"/g) ?? []).length, 1, 'the published port 8088');
  assert.match(dom, /0\.0\.0\.0:8088 → 8088\/tcp/);
  assert.equal((dom.match(/data-kind="masquerade"/g) ?? []).length, 1, 'NAT to the outside');
  assert.match(dom, /class="edge veth fault" data-fault="delay 20ms/, 'the impairment on postgres\'s link');
  assert.match(dom, /class="edge cut fault" data-fault="partition: redis-sys \| \(rest\) /, 'the partition as a cut');
  // The screenshot a person looks at (README shows docs/graph-seed.png, made from this one).
  const shot = path.join(os.tmpdir(), 'nsnet-graph-seed.png');
  chromium(['--window-size=1400,900', `--screenshot=${shot}`, `file://${page}`], path.join(tmp, 'p2'));
  assert.ok(fs.statSync(shot).size > 10000, 'a screenshot with something in it');
  t.diagnostic(`screenshot: ${shot}`);
});
