// Node's start path of the CLI (copied to dist/ by scripts/bundle.mjs), run when the fast client (dist/nsnet-fast,
// src/cli/client.c) found no resident helper to serve the command, or directly by bin/nsnet when there is no fast
// client. dist/nsnet-client.cjs (src/cli/client.ts) starts a helper for the next commands; dist/nsnet.cjs is run through vm.Script with a V8 code cache kept next to it, so functions compiled by earlier runs are not
// compiled again. The cache is written once (or again when V8 rejects it after a rebuild); an unwritable
// directory just means no cache.
'use strict';
const path = require('path');

const file = path.join(__dirname, 'nsnet.cjs');
// `--nsnet-helper-up` (first, from the fast client): a helper serves, but not this command; start none.
const helperUp = process.argv[2] === '--nsnet-helper-up';
if (helperUp) process.argv.splice(2, 1);
require('./nsnet-client.cjs').main(__filename, file, inProcess, helperUp);

function inProcess() {
const fs = require('fs');
const vm = require('vm');
const Module = require('module');
const cacheFile = file + '.v8cache';
let cached;
try {
  cached = fs.readFileSync(cacheFile);
} catch {
  cached = undefined;
}
const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData: cached });
if (!cached || script.cachedDataRejected) {
  process.once('exit', () => {
    try {
      fs.writeFileSync(cacheFile + '.' + process.pid, script.createCachedData());
      fs.renameSync(cacheFile + '.' + process.pid, cacheFile);
    } catch {
      /* read-only install: run without a cache */
    }
  });
}
const mod = { exports: {} };
script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, __dirname);
}
