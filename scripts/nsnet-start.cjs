// Start path of the CLI (copied to dist/ by scripts/bundle.mjs): runs dist/nsnet.cjs through vm.Script with a V8
// code cache kept next to it, so functions compiled by earlier runs are not compiled again. The cache is
// written once (or again when V8 rejects it after a rebuild); an unwritable directory just means no cache.
'use strict';
const fs = require('fs');
const vm = require('vm');
const path = require('path');
const Module = require('module');

const file = path.join(__dirname, 'nsnet.cjs');
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
