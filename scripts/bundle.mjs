#!/usr/bin/env node
// Builds the CLI's fast start path: one CommonJS bundle of src/cli/main.ts (and everything it imports, except the
// native addons), loaded by dist/nsnet-start.cjs with a V8 code cache. Measured on this machine kind: `network ls`
// 63 ms (ESM modules from dist/src) -> 50 ms (bundle + code cache); Node's own start-up is ~25 ms of that.
import { build } from 'esbuild';
import fs from 'node:fs';
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

await build({
  entryPoints: ['src/cli/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: 'dist/nsnet.cjs',
  // Native addons, and the libraries only some commands load (`up`: ajv, yaml; `graph`: dagre; `cluster`: etcd3): kept out of the
  // bundle every command parses (they tripled it, and every in-process start paid for it), loaded from
  // node_modules when used.
  // etcd3 (src/cluster, loaded by cluster commands only): grpc-js and its proto files are read relative to the
  // package's own directory (__dirname), which a bundle would break.
  external: ['better-sqlite3', 'koffi', 'ajv', 'yaml', '@dagrejs/dagre', 'etcd3'],
  // Modules locate files relative to themselves (the resolver's entry, bin/nsnet): in the bundle, as if they
  // were dist/src/cli/main.js, which resolves to the same places.
  // (A file URL made by hand: url.pathToFileURL cost ≈1 ms at every start.)
  define: { 'import.meta.url': '__nsnet_url' },
  banner: { js: "const __nsnet_url = 'file://' + encodeURI(require('path').join(__dirname, 'src/cli/main.js')).replace(/[?#]/g, encodeURIComponent);" },
  plugins: [lazyChildProcess],
  // Comments and whitespace out (780 KB -> 550 KB, measured): every in-process start reads, decodes and hashes the
  // whole file for its code cache. Names are kept, so an NSNET_DEBUG stack trace still says which function.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'error',
});
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
