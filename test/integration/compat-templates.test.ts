// Docker compatibility: the Go templates scripts pass to inspect -f, network inspect -f, ps --format and
// network ls --format. Expected outputs are what Docker 20.10 prints for the same script.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestHost } from '../helpers/host.js';

test('compat: Go templates in inspect, network inspect, ps, network ls', async (t) => {
  const h = TestHost.create('cpt');
  t.after(() => h.cleanup());

  // network ls lists bridge, host and none before anything was created (Docker's default table).
  const ls0 = h.ok(['network', 'ls']).split('\n');
  assert.match(ls0[0], /^NETWORK ID {5}NAME {6}DRIVER {4}SCOPE$/, ls0[0]);
  assert.deepEqual(ls0.slice(1).map((l) => l.split(/\s+/).slice(1)), [['bridge', 'bridge', 'local'], ['host', 'host', 'local'], ['none', 'null', 'local']]);
  const bridgeId = h.ok(['network', 'inspect', '-f', '{{.Id}}', 'bridge']);
  assert.match(bridgeId, /^[0-9a-f]{64}$/);

  h.ok(['network', 'create', '--subnet', '10.61.0.0/24', '--label', 'env=test', 'front']);
  h.ok(['network', 'create', '--subnet', '10.62.0.0/24', 'back']);
  h.ok(['run', '-d', '--name', 'web', '--network', 'front', '--ip', '10.61.0.10', '-p', '127.0.0.1::80', '--', 'sleep', '300']);
  h.ok(['network', 'connect', '--ip', '10.62.0.20', 'back', 'web']);
  h.ok(['run', '-d', '--name', 'db', '--', 'sleep', '300']);
  assert.equal(h.ok(['network', 'inspect', '-f', '{{.Id}}', 'bridge']), bridgeId, 'the default bridge kept the id it was listed with');

  // The most common address idiom; Networks are ranged by name (back before front).
  assert.equal(h.ok(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', 'web']), '10.62.0.20 10.61.0.10');
  assert.equal(h.ok(['inspect', '--format', '{{.NetworkSettings.Networks.front.IPAddress}}', 'web']), '10.61.0.10');
  assert.equal(h.ok(['inspect', '--format', '{{.NetworkSettings.IPAddress}}', 'db']), '172.17.0.2');
  assert.equal(h.ok(['inspect', '-f', '{{.Name}} {{.State.Status}} {{.State.Running}}', 'web', 'db']), '/web running true\n/db running true');
  assert.equal(h.ok(['inspect', '-f', '{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostIp}}', 'web']), '127.0.0.1');
  const hostPort = h.ok(['inspect', '-f', '{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}', 'web']);
  assert.match(hostPort, /^\d+$/);
  assert.equal(h.ok(['inspect', '-f', '{{json .NetworkSettings.Ports}}', 'web']), `{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"${hostPort}"}]}`);
  const nets = JSON.parse(h.ok(['inspect', 'web']))[0].NetworkSettings.Networks;
  assert.equal(h.ok(['inspect', '-f', '{{range $k, $v := .NetworkSettings.Networks}}{{printf "%s=%s" $k (upper $v.MacAddress)}};{{end}}', 'web']),
    `back=${nets.back.MacAddress.toUpperCase()};front=${nets.front.MacAddress.toUpperCase()};`);
  assert.equal(h.ok(['inspect', '-f', '{{lower "ABC"}}{{println}}{{join (split "a,b" ",") "+"}}', 'web']), 'abc\na+b');
  // inspect finds networks too (as docker inspect).
  assert.equal(h.ok(['inspect', '-f', '{{.Name}} {{.Driver}} {{index .Labels "env"}}', 'front']), 'front bridge test');
  assert.equal(h.ok(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}}{{end}}', 'front']), '10.61.0.0/24');
  assert.equal(h.ok(['network', 'inspect', '-f', '{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}', 'back']), 'web 10.62.0.20/24');
  // host and none by id too.
  const hostId = h.ok(['network', 'ls', '-q', '--filter', 'name=host']);
  assert.equal(h.ok(['network', 'inspect', '-f', '{{.Name}}', hostId]), 'host');
  assert.equal(h.ok(['inspect', '-f', '{{.Driver}}', 'none']), 'null');

  // Missing key: <no value>, as Go; unsupported templates fail loudly (no JSON, non-zero exit).
  assert.equal(h.ok(['inspect', '-f', '{{.NoSuchField}}', 'web']), '<no value>');
  for (const bad of ['{{.Name', '{{template "x"}}', '{{nosuch .Name}}', '{{if .Name}}x']) {
    const r = h.nsnet(['inspect', '-f', bad, 'web']);
    assert.notEqual(r.status, 0, bad);
    assert.equal(r.stdout, '', `${bad}: nothing on stdout`);
    assert.match(r.stderr, /^Error: template/, bad);
  }
  const r = h.nsnet(['inspect', '-f', '{{.Name}}', 'web', 'nope']);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '/web\n');
  assert.match(r.stderr, /No such object: nope/);

  // ps --format: fields, table with tabs, {{json .}} and json with Docker's field names (all strings).
  assert.equal(h.ok(['ps', '--format', '{{.Names}}']), 'db\nweb', 'newest first');
  const tab = h.ok(['ps', '--format', 'table {{.Names}}\\t{{.Status}}']).split('\n');
  assert.match(tab[0], /^NAMES {5}STATUS$/);
  assert.match(tab[1], /^db {8}Up (Less than a second|\d+ seconds?)$/);
  const j = JSON.parse(h.ok(['ps', '--format', '{{json .}}', '--filter', 'name=web']));
  assert.deepEqual(Object.keys(j), ['Command', 'CreatedAt', 'ID', 'Image', 'Labels', 'LocalVolumes', 'Mounts', 'Names', 'Networks', 'Ports', 'RunningFor', 'Size', 'State', 'Status']);
  assert.equal(j.Command, '"sleep 300"');
  assert.equal(j.Networks, 'back,front');
  assert.equal(j.Ports, `127.0.0.1:${hostPort}->80/tcp`);
  assert.equal(j.State, 'running');
  assert.match(j.CreatedAt, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/);
  // The same object (the two clocks may straddle a second: Status and RunningFor aside).
  const timeless = (o: Record<string, string>) => ({ ...o, Status: undefined, RunningFor: undefined });
  assert.deepEqual(timeless(JSON.parse(h.ok(['ps', '--format', 'json', '--filter', 'name=web']))), timeless(j));
  assert.equal(h.ok(['ps', '--format', '{{.ID}} {{len .Names}} {{.Label "x"}}|', '--filter', 'name=db']), `${h.ok(['ps', '-q', '--filter', 'name=db'])} 2 |`);
  const bad = h.nsnet(['ps', '--format', '{{.Nmes}}']);
  assert.equal(bad.status, 1);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /can't evaluate field Nmes/);
  assert.equal(h.nsnet(['ps', '--format', '{{.Names']).status, 2);

  // network ls --format
  assert.equal(h.ok(['network', 'ls', '--format', '{{.Name}}']), 'back\nbridge\nfront\nhost\nnone');
  assert.equal(h.ok(['network', 'ls', '--format', '{{.Name}} {{.Label "env"}}', '--filter', 'label=env']), 'front test');
  assert.equal(h.ok(['network', 'ls', '--format', 'table {{.Name}}\\t{{.Driver}}', '--filter', 'driver=null']), 'NAME      DRIVER\nnone      null');
  assert.equal(h.ok(['network', 'ls', '--format', '{{.Name}}', '--filter', 'type=custom']), 'back\nfront');
});
