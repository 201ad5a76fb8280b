// The seed walk-through as a demo: every nsnet command is printed with its output. Runs inside a throwaway host
// netns with an "upstream" netns standing for the outside world; removes everything at the end.
import path from 'node:path';
import { REPO, TestHost, waitFor, type Result } from '../test/helpers/host.js';

const SERV = path.join(REPO, 'test/fixtures/tinyserv.py');
const h = TestHost.create('demo');
let failed = false;

function show(args: string[], r: Result): Result {
  process.stdout.write(`\n$ nsnet ${args.map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n${r.stdout}${r.stderr}`);
  return r;
}
function nsnet(...args: string[]): string {
  const r = show(args, h.nsnet(args));
  if (r.status !== 0) throw new Error(`nsnet ${args.join(' ')} exited ${r.status}`);
  return r.stdout.trim();
}
function say(s: string): void {
  process.stdout.write(`\n# ${s}\n`);
}

try {
  const up = h.addUpstream();
  h.shIn(up.ns, `python3 ${SERV} whoami 7000 </dev/null >/dev/null 2>&1 &`);
  say(`host netns ${h.ns}; an "upstream" machine at ${up.ip} (the host's uplink is ${up.hostIp})`);

  say('docker network create oa-net');
  nsnet('network', 'create', 'oa-net');
  nsnet('network', 'ls');

  say('the backends, on oa-net');
  nsnet('run', '-d', '--name', 'redis-sys', '--network', 'oa-net', '--', 'python3', SERV, 'redis', '6379');
  nsnet('run', '-d', '--name', 'postgres', '--network', 'oa-net', '--', 'python3', SERV, 'pg', '5432');

  say('the app, published on host port 8088; it finds its backends by name (nsnet\'s embedded DNS)');
  nsnet('run', '-d', '--name', 'oa-java', '--network', 'oa-net', '-p', '8088:8088', '--', 'python3', SERV, 'http', '8088',
    'redis-sys=redis-sys:6379', 'postgres=postgres:5432');
  nsnet('ps');

  say("inside oa-java's own network stack");
  show(['exec', 'oa-java', '--', 'ip', '-br', 'addr'], h.nsnet(['exec', 'oa-java', '--', 'ip', '-br', 'addr']));
  show(['exec', 'oa-java', '--', 'ip', 'route'], h.nsnet(['exec', 'oa-java', '--', 'ip', 'route']));

  say("names resolve inside the containers");
  show(['exec', 'oa-java', '--', 'getent', 'hosts', 'redis-sys'], h.nsnet(['exec', 'oa-java', '--', 'getent', 'hosts', 'redis-sys']));
  show(['exec', 'oa-java', '--', 'cat', '/etc/resolv.conf'], h.nsnet(['exec', 'oa-java', '--', 'cat', '/etc/resolv.conf']));

  say('the app reaches both backends by name over the bridge');
  const java = JSON.parse(h.ok(['inspect', 'oa-java']))[0].NetworkSettings.Networks['oa-net'].IPAddress;
  const get = (url: string) => h.sh(`python3 -c "import urllib.request;print(urllib.request.urlopen('${url}',timeout=2).read().decode().strip())"`).stdout.trim();
  const deps = await waitFor(() => get(`http://${java}:8088/deps`), 10000, 200);
  process.stdout.write(`GET http://${java}:8088/deps -> ${deps}\n`);

  say('the published port, from the upstream machine');
  const viaPort = await waitFor(() => h.shIn(up.ns, `python3 -c "import urllib.request;print(urllib.request.urlopen('http://${up.hostIp}:8088/health',timeout=2).read().decode().strip())"`).stdout.trim(), 5000, 200).catch(() => '(not reachable)');
  process.stdout.write(`GET http://${up.hostIp}:8088/health from upstream -> ${viaPort}\n`);

  say('outbound traffic is masqueraded: the upstream server sees the host address');
  const seen = h.exec('oa-java', `python3 -c "import socket;s=socket.create_connection(('${up.ip}',7000),timeout=2);print(s.recv(64).decode().strip())"`).stdout.trim();
  process.stdout.write(`upstream saw the connection from ${seen}\n`);

  say('the four network modes');
  nsnet('run', '--rm', '--network', 'none', '--', 'ip', '-br', 'addr');
  nsnet('run', '--rm', '--network', 'host', '--', 'ip', '-br', 'link', 'show', 'upl0');
  nsnet('run', '--rm', '--network', 'container:redis-sys', '--', 'ip', '-br', 'addr', 'show', 'eth0');

  say('clean up: nothing is left behind');
  nsnet('rm', '-f', 'redis-sys', 'postgres', 'oa-java');
  nsnet('network', 'rm', 'oa-net');
  nsnet('check');
  // `rm` leaves each veth to the kernel, which removes it with the container's netns a moment later.
  await waitFor(() => h.links().every((l) => l === 'lo' || l === 'upl0'), 5000, 50).catch(() => undefined);
  process.stdout.write(`links left in the host netns: ${h.links().join(' ')}\ncontainer namespaces left: ${h.containerNetns().length}\n`);
} catch (e) {
  failed = true;
  process.stderr.write(`demo failed: ${(e as Error).message}\n`);
} finally {
  h.cleanup();
}
process.exit(failed ? 1 : 0);
