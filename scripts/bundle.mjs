#!/usr/bin/env node
// Builds the CLI's fast start path: one CommonJS bundle of src/cli/main.ts (and everything it imports, except the
// native addons), loaded by dist/nsnet-start.cjs with a V8 code cache. Measured on this machine kind: `network ls`
// 63 ms (ESM modules from dist/src) -> 50 ms (bundle + code cache); Node's own start-up is ~25 ms of that.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';

// commander requires child_process at load for its executable subcommands (which nsnet has none of): that module
// and what it pulls in (net, stream, dgram) cost every command ≈4 ms. In the bundle it is loaded when used.
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(b) {
    b.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, (args) => {
      const src = fs.readFileSync(args.path, 'utf8');
      const eager = "const childProcess = require('node:child_process');";
      if (!src.includes(eager)) throw new Error(`bundle: ${args.path} no longer has the line the lazy-child-process plugin rewrites`);
      const lazy = "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };";
      return { contents: src.replace(eager, lazy), loader: 'js' };
    });
  },
};

// The native addons, loaded straight from their .node files. `require('koffi')` and `require('better-sqlite3')` from
// node_modules cost an in-process start ≈8-10 ms together before they do anything (measured with a CPU profile of
// a first `nsnet ps`): the package lookups and package.json reads of a dozen modules, koffi's platform detection
// (it reads the ELF header of the node binary to tell glibc from musl), `bindings`' search of ten candidate paths
// for better-sqlite3's addon. The build asks the packages themselves which .node file they load on this machine
// (the same detection, once) and the bundle loads that file directly: koffi's addon as its module (koffi's
// JavaScript only checks the addon's version, which the bundle does too, and adds deprecated aliases nsnet does
// not use), better-sqlite3's JavaScript bundled with its `bindings` call replaced by the addon. Anything
// unexpected at run time (the file moved, another version installed since) falls back to the packages' own
// loading from node_modules: slower, the same results.
function nativeAddons() {
  const req = createRequire(path.resolve('package.json'));
  const nm = fs.realpathSync('node_modules');
  const inDist = (f) => (f && f.startsWith(nm + path.sep) ? path.join('..', 'node_modules', f.slice(nm.length + 1)) : null);
  const loaded = (suffix) => Object.keys(req.cache).find((f) => f.endsWith(suffix));
  let koffi = null;
  let sqlite = null;
  try {
    const k = req('koffi');
    const file = inDist(loaded(`${path.sep}koffi.node`));
    if (file && typeof k.version === 'string') koffi = { file, version: k.version };
  } catch { /* no fast path: the bundle loads koffi from node_modules */ }
  try {
    new (req('better-sqlite3'))(':memory:').close();
    const file = inDist(loaded(`${path.sep}better_sqlite3.node`));
    if (file) sqlite = { file };
  } catch { /* idem */ }
  return { koffi, sqlite };
}
const native = nativeAddons();
if (!native.koffi || !native.sqlite) console.error(`WARNING: bundle: ${!native.koffi ? 'koffi' : 'better-sqlite3'}'s addon not found: the CLI loads it from node_modules (slower start)`);

// `createRequire` from node:module, for src/ (the modules that load koffi and better-sqlite3 use it): the real one,
// except for those two packages, which come from the addons found above. src/ imports nothing else from
// node:module (a new import would fail the build here: no such export).
const nativeShim = `
const path = require('node:path');
const { createRequire: nodeCreateRequire } = require('node:module');
const KOFFI = ${JSON.stringify(native.koffi)};
const SQLITE = ${JSON.stringify(native.sqlite)};
let koffi, sqlite, sqliteAddon;
function loadKoffi(real) {
  try {
    const k = require(path.join(__dirname, KOFFI.file));
    if (k.version === KOFFI.version) return k;
  } catch { /* below */ }
  return real('koffi');
}
function loadSqlite(real) {
  try {
    sqliteAddon = require(path.join(__dirname, SQLITE.file));
  } catch {
    return real('better-sqlite3');
  }
  return ${native.sqlite ? "require('better-sqlite3')" : 'null'};
}
exports.sqliteAddon = () => sqliteAddon;
exports.createRequire = (url) => {
  const real = nodeCreateRequire(url);
  const r = (id) => {
    if (id === 'koffi' && KOFFI) return (koffi ??= loadKoffi(real));
    if (id === 'better-sqlite3' && SQLITE) return (sqlite ??= loadSqlite(real));
    return real(id);
  };
  r.resolve = real.resolve;
  r.cache = real.cache;
  return r;
};
`;
// node:crypto for src/: src/cli/crypto-lite.ts (SHA-256 and randomBytes without loading node:crypto and node:stream
// with it, ≈5 ms of every in-process start; node:crypto's own for anything else).
const cryptoLite = path.resolve('src/cli/crypto-lite.ts');
const cryptoLitePlugin = {
  name: 'crypto-lite',
  setup(b) {
    b.onResolve({ filter: /^(node:)?crypto$/ }, (args) =>
      args.importer.startsWith(path.resolve('src') + path.sep) && args.importer !== cryptoLite ? { path: cryptoLite } : undefined);
  },
};

const nativeAddonsPlugin = {
  name: 'native-addons',
  setup(b) {
    b.onResolve({ filter: /^node:module$/ }, (args) =>
      args.namespace === 'nsnet' || !args.importer.startsWith(path.resolve('src') + path.sep) ? { path: 'node:module', external: true } : { path: 'native', namespace: 'nsnet' });
    b.onLoad({ filter: /^native$/, namespace: 'nsnet' }, () => ({ contents: nativeShim, loader: 'js', resolveDir: process.cwd() }));
    b.onResolve({ filter: /^nsnet:native$/ }, () => ({ path: 'native', namespace: 'nsnet' }));
    b.onLoad({ filter: /[\\/]better-sqlite3[\\/]lib[\\/]database\.js$/ }, (args) => {
      const src = fs.readFileSync(args.path, 'utf8');
      const eager = "require('bindings')('better_sqlite3.node')";
      if (!src.includes(eager)) throw new Error(`bundle: ${args.path} no longer has the line the native-addons plugin rewrites`);
      return { contents: src.replace(eager, "require('nsnet:native').sqliteAddon()"), loader: 'js' };
    });
  },
};

// esbuild gives every module's `import fs from 'node:fs'` its own namespace object: __toESM copies each of the
// built-in's properties as a getter onto a new object, per importing module (fs ~100 properties, 27 importers;
// path 15; crypto's 10 before crypto-lite). ≈3 ms of every in-process start (CPU profile: __copyProps). The same module gets the same
// namespace object here (made once, on first import): identical to what each importer got before, since a
// built-in's exports do not change.
function shareNamespaces(code) {
  // var __toESM=(mod,isNodeMode,target)=>(target=mod!=null?...  (the names as esbuild 0.25 emits them, or minified)
  const helper = /var ([\w$]+)=\(([\w$]+),([\w$]+),([\w$]+)\)=>\(\4=\2!=null\?/;
  if (!helper.test(code)) throw new Error('bundle: esbuild no longer emits the __toESM helper shareNamespaces rewrites');
  return code.replace(helper, (_, toESM, mod, node, target) =>
    `var ${toESM}=(${mod},${node})=>${node}===1&&${mod}!==null&&typeof ${mod}==="object"?__nsnetNs.get(${mod})??__nsnetNsNew(${mod}):__nsnetToESM(${mod},${node}),`
    + `__nsnetNs=new WeakMap(),__nsnetNsNew=(${mod},t=__nsnetToESM(${mod},1))=>(__nsnetNs.set(${mod},t),t),`
    + `__nsnetToESM=(${mod},${node},${target})=>(${target}=${mod}!=null?`);
}

const cli = await build({
  entryPoints: ['src/cli/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: 'dist/nsnet.cjs',
  // Native addons, and the libraries only some commands load (`up`: ajv, yaml; `graph`: dagre; `cluster`: etcd3): kept out of the
  // bundle every command parses (they tripled it, and every in-process start paid for it), loaded from
  // node_modules when used.
  // better-sqlite3's JavaScript is bundled (nativeAddonsPlugin); without its addon found, it is loaded from there.
  // etcd3 is never reached from the CLI (only the cluster agent, an ESM process of its own, loads it); kept external
  // in case: grpc-js reads its proto files relative to the package's own directory, which a bundle would break.
  external: [...(native.sqlite ? [] : ['better-sqlite3']), 'koffi', 'ajv', 'yaml', '@dagrejs/dagre', 'etcd3'],
  // Modules locate files relative to themselves (the resolver's entry, bin/nsnet): in the bundle, as if they
  // were dist/src/cli/main.js, which resolves to the same places.
  // (A file URL made by hand: url.pathToFileURL cost ≈1 ms at every start.)
  define: { 'import.meta.url': '__nsnet_url' },
  banner: { js: "const __nsnet_url = 'file://' + encodeURI(require('path').join(__dirname, 'src/cli/main.js')).replace(/[?#]/g, encodeURIComponent);" },
  plugins: [lazyChildProcess, nativeAddonsPlugin, cryptoLitePlugin],
  // Comments and whitespace out (780 KB -> 550 KB, measured): every in-process start reads, decodes and hashes the
  // whole file for its code cache. Names are kept, so an NSNET_DEBUG stack trace still says which function.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'error',
  write: false,
});
fs.writeFileSync('dist/nsnet.cjs', shareNamespaces(cli.outputFiles[0].text));
// The thin client of the resident helper (src/cli/client.ts): Node built-ins only, loaded before the bundle.
await build({
  entryPoints: ['src/cli/client.ts'],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: 'dist/nsnet-client.cjs',
  logLevel: 'error',
});
fs.rmSync('dist/nsnet.cjs.v8cache', { force: true });
fs.copyFileSync('scripts/nsnet-start.cjs', 'dist/nsnet-start.cjs');
// The fast client (src/cli/client.c): the CLI's path that starts no Node when a resident helper serves. Without a
// C compiler there is none and bin/nsnet runs everything through Node (slower, the same results).
fs.rmSync('dist/nsnet-fast', { force: true });
const cc = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', 'dist/nsnet-fast.tmp', 'src/cli/client.c'], { stdio: 'inherit' });
if (cc.status === 0) fs.renameSync('dist/nsnet-fast.tmp', 'dist/nsnet-fast');
else console.error('WARNING: no C compiler (cc) or src/cli/client.c did not build: the CLI runs without its fast client');
