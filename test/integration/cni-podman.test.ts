// A real runtime drives nsnet: Podman 4 (Debian `podman`) with its CNI backend and bin/cni as its only plugin
// directory, hermetic: a private containers.conf (CONTAINERS_CONF), network_config_dir with an nsnet conflist,
// storage/runroot/tmp in a temp dir, an image made without a registry (`podman import` of a static busybox rootfs),
// podman itself inside the throwaway host netns (nsenter --net, not `ip netns exec`: that remounts /sys and runc
// then finds no cgroup). Root here lacks CAP_SYS_RESOURCE: containers get lower rlimits (--ulimit).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, TestHost, must, sh, type Result } from '../helpers/host.js';

const missing = ['podman', 'runc', 'conmon'].filter((b) => sh(`command -v ${b}`).status !== 0);
if (!fs.existsSync('/bin/busybox') || !/statically linked/.test(sh('file -L /bin/busybox 2>/dev/null || true').stdout + sh('ldd /bin/busybox 2>&1 || true').stdout)) missing.push('busybox-static');
const skip = missing.length ? `needs ${missing.join(', ')} (scripts/setup.sh installs them)` : false;

const LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

test('Podman (CNI backend) on an nsnet network: names, published ports (upstream, 127.0.0.1, hairpin), an nsnet container, rm frees the address', { skip, timeout: 120000 }, () => {
  const h = TestHost.create('pod');
  const T = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-podman-')));
  const netnsBefore = new Set(fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : []);
  const env: NodeJS.ProcessEnv = {
    ...process.env, CONTAINERS_CONF: path.join(T, 'containers.conf'), NSNET_ROOT: h.root, NSNET_RESOLV_CONF: path.join(h.root, 'test-resolv.conf'),
    CONTAINERS_STORAGE_CONF: path.join(T, 'storage.conf'), CONTAINERS_REGISTRIES_CONF: path.join(T, 'registries.conf'),
  };
  delete env.NSNET_HOST_NETNS;
  const podman = (args: string[], timeout = 30000): Result => {
    const r = spawnSync('nsenter', [`--net=/run/netns/${h.ns}`, 'podman', '--root', path.join(T, 'storage'), '--runroot', path.join(T, 'run'),
      '--storage-driver', 'vfs', '--tmpdir', path.join(T, 'tmp'), ...args], { encoding: 'utf8', env, timeout });
    return { status: r.status ?? 128, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
  };
  const pok = (args: string[]) => must(podman(args), `podman ${args.join(' ')}`).stdout.trim();
  try {
    const up = h.addUpstream();
    fs.mkdirSync(path.join(T, 'net.d'));
    fs.mkdirSync(path.join(T, 'tmp'));
    fs.writeFileSync(path.join(T, 'containers.conf'), [
      // Podman's cleanup process (conmon's exit command: the DEL after a container ends, `run --rm`) gets only
      // conmon_env_vars, not our environment: it needs this file too (the plugin directory), and NSNET_ROOT so that
      // the plugin's fast client asks this state directory's resident helper (the conflist's `root` alone would be
      // honoured too, but run in-process, next to a helper started for the default root).
      '[engine]', `conmon_env_vars = ["PATH=${process.env.PATH}", "CONTAINERS_CONF=${T}/containers.conf", "NSNET_RESOLV_CONF=${env.NSNET_RESOLV_CONF}", "NSNET_ROOT=${h.root}"]`,
      'cgroup_manager = "cgroupfs"', 'events_logger = "file"', `events_logfile_path = "${T}/events.log"`, 'runtime = "runc"',
      `tmp_dir = "${T}/tmp"`, '[network]', 'network_backend = "cni"', `cni_plugin_dirs = ["${path.join(REPO, 'bin/cni')}"]`,
      `network_config_dir = "${T}/net.d"`, 'default_network = "nsnet-pod"', '',
    ].join('\n'));
    fs.writeFileSync(path.join(T, 'storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${T}/storage"\nrunroot = "${T}/run"\n`);
    fs.writeFileSync(path.join(T, 'registries.conf'), 'unqualified-search-registries = []\n');
    // What Podman's own CNI networks look like, with nsnet as the plugin (docs: README "nsnet as a CNI plugin").
    fs.writeFileSync(path.join(T, 'net.d', 'nsnet-pod.conflist'), JSON.stringify({
      cniVersion: '0.4.0', name: 'nsnet-pod',
      // `root`: the state directory whatever the environment of the process running the plugin.
      plugins: [{ type: 'nsnet', root: h.root, subnet: '10.91.0.0/24', capabilities: { portMappings: true, aliases: true } }],
    }));
    const rootfs = path.join(T, 'rootfs');
    for (const d of ['bin', 'www', 'etc', 'proc', 'sys', 'dev', 'tmp']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
    fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
    fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
    for (const a of ['sh', 'httpd', 'wget', 'nslookup', 'ping', 'sleep', 'cat', 'ip']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
    fs.writeFileSync(path.join(rootfs, 'www/index.html'), 'hello-from-podman\n');
    must(sh(`tar -C ${rootfs} -cf ${T}/rootfs.tar .`), 'tar');
    pok(['import', path.join(T, 'rootfs.tar'), 'localhost/nsnet-busybox']);

    assert.match(pok(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']), /^nsnet-pod nsnet$/m, 'podman network ls shows the nsnet network');
    pok(['run', '-d', '--name', 'web', '--network', 'nsnet-pod', '--network-alias', 'www', '-p', '8080:80', ...LIMITS, 'localhost/nsnet-busybox', 'httpd', '-f', '-p', '80', '-h', '/www']);
    const webIp = pok(['inspect', 'web', '--format', '{{(index .NetworkSettings.Networks "nsnet-pod").IPAddress}}']);
    assert.match(webIp, /^10\.91\.0\.\d+$/);
    // nsnet's view of it: a CNI container with the runtime's id and its port.
    const ps = h.ok(['ps', '--format', 'json']).split('\n').map((l) => JSON.parse(l));
    assert.equal(ps.length, 1);
    assert.match(ps[0].Ports, /0\.0\.0\.0:8080->80\/tcp/);
    const get = (r: () => Result, what: string) => {
      let last: Result | null = null;
      for (let i = 0; i < 30; i++) {
        last = r();
        if (last.status === 0 && last.stdout.includes('hello-from-podman')) return;
        spawnSync('sleep', ['0.1']);
      }
      assert.fail(`${what}: ${last?.stdout} ${last?.stderr}`);
    };
    // Another podman container reaches it by name and by alias (nsnet's resolver: the result's dns.nameservers).
    const byName = podman(['run', '--rm', '--network', 'nsnet-pod', ...LIMITS, 'localhost/nsnet-busybox', 'sh', '-c', 'wget -q -O - http://web/ && wget -q -O - http://www/']);
    assert.equal(byName.status, 0, byName.stdout + byName.stderr);
    assert.equal(byName.stdout.split('hello-from-podman').length - 1, 2);
    // The published port: from the upstream machine, from the host's 127.0.0.1, hairpin from the container itself.
    get(() => h.shIn(up.ns, 'curl -s -m 2 http://198.51.100.1:8080/'), 'published port from upstream');
    get(() => h.sh('curl -s -m 2 http://127.0.0.1:8080/'), 'published port from 127.0.0.1');
    get(() => podman(['exec', 'web', 'wget', '-q', '-O', '-', 'http://198.51.100.1:8080/']), 'hairpin');
    // An nsnet container on the same network: both ways, by name.
    h.ok(['run', '-d', '--name', 'native', '--network', 'nsnet-pod', '--', 'sleep', '120']);
    get(() => h.exec('native', 'curl -s -m 2 http://web/'), 'nsnet container -> podman container by name');
    const ping = podman(['run', '--rm', '--network', 'nsnet-pod', ...LIMITS, 'localhost/nsnet-busybox', 'ping', '-c', '1', '-W', '2', 'native']);
    assert.equal(ping.status, 0, `podman container -> nsnet container by name: ${ping.stdout}${ping.stderr}`);
    h.ok(['rm', '-f', 'native']);
    // nsnet never removes the runtime's container.
    assert.notEqual(h.nsnet(['rm', '-f', ps[0].Names]).status, 0);
    // podman rm frees the address (DEL): the very address can be asked for again at once.
    pok(['rm', '-f', '-t', '0', 'web']);
    const left = JSON.parse(h.ok(['network', 'inspect', 'nsnet-pod']))[0].Containers as Record<string, { IPv4Address: string }>;
    assert.ok(!Object.values(left).some((c) => c.IPv4Address.startsWith(webIp + '/')), `address ${webIp} freed: ${JSON.stringify(left)}`);
    const again = podman(['run', '--rm', '--network', 'nsnet-pod', '--ip', webIp, ...LIMITS, 'localhost/nsnet-busybox', 'ip', '-4', 'addr', 'show', 'eth0']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`inet ${webIp.replace(/\./g, '\\.')}/24`));
    // `run --rm` containers are torn down by Podman's cleanup process (asynchronously, after they exit).
    let chk = h.nsnet(['check']);
    for (let i = 0; i < 50 && chk.status !== 0; i++) {
      spawnSync('sleep', ['0.1']);
      chk = h.nsnet(['check']);
    }
    assert.equal(chk.status, 0, chk.stdout + chk.stderr);
    assert.equal(h.ok(['ps', '-a', '-q']), '', 'every attachment is gone once Podman has no container');
  } finally {
    // Podman's own namespaces of this test's containers (it removes them on rm; a failed test may leave some).
    const ids = podman(['ps', '-a', '-q']).stdout.split('\n').filter(Boolean);
    const keys = ids.map((id) => podman(['inspect', id, '--format', '{{.NetworkSettings.SandboxKey}}']).stdout.trim()).filter((k) => k.startsWith('/run/netns/'));
    podman(['rm', '-a', '-f', '-t', '0'], 60000);
    for (const k of keys) if (fs.existsSync(k) && !netnsBefore.has(path.basename(k))) sh(`ip netns del ${path.basename(k)}`);
    h.cleanup();
    fs.rmSync(T, { recursive: true, force: true });
  }
});
