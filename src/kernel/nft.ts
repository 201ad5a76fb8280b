// libnftables in-process (Debian's libnftables.so.1): one runScript() = one atomic kernel transaction.
// A context is bound to the netns it was CREATED in (docs/kernel-notes.md §9): create it inside the host netns.
import { createRequire } from 'node:module';
import { inNetns } from './netns.js';

const require = createRequire(import.meta.url);

type Fn = (...args: unknown[]) => unknown;
interface NftLib {
  ctxNew: Fn; ctxFree: Fn; bufOut: Fn; bufErr: Fn; getOut: Fn; getErr: Fn; run: Fn; setFlags: Fn;
}
let lib: NftLib | null = null;
function load(): NftLib {
  if (lib) return lib;
  const koffi = require('koffi') as typeof import('koffi');
  let h;
  try {
    h = koffi.load('libnftables.so.1');
  } catch (e) {
    throw new Error(`cannot load libnftables.so.1 (install the Debian package "nftables"): ${(e as Error).message}`);
  }
  lib = {
    ctxNew: h.func('void *nft_ctx_new(uint32_t flags)'),
    ctxFree: h.func('void nft_ctx_free(void *ctx)'),
    bufOut: h.func('int nft_ctx_buffer_output(void *ctx)'),
    bufErr: h.func('int nft_ctx_buffer_error(void *ctx)'),
    getOut: h.func('const char *nft_ctx_get_output_buffer(void *ctx)'),
    getErr: h.func('const char *nft_ctx_get_error_buffer(void *ctx)'),
    run: h.func('int nft_run_cmd_from_buffer(void *ctx, const char *buf)'),
    setFlags: h.func('void nft_ctx_output_set_flags(void *ctx, uint32_t flags)'),
  };
  return lib;
}

export const NFT_CTX_OUTPUT_JSON = 1 << 4;

export class NftError extends Error {
  constructor(message: string, readonly script: string) {
    super(message);
  }
}

/** What the engine uses of an {@link Nft} context: a fake (test/helpers/fake-kernel.ts) records the scripts. */
export type NftPort = Pick<Nft, 'run' | 'listTable' | 'close'>;

/** One libnftables context, bound to the netns it was created in. */
export class Nft {
  private ctx: unknown;
  private constructor(ctx: unknown) {
    this.ctx = ctx;
  }

  /** Creates a context in the current netns, or inside the netns `fd` when given. */
  static open(netnsFd?: number): Nft {
    const l = load();
    const make = () => {
      const ctx = l.ctxNew(0);
      if (!ctx) throw new Error('nft_ctx_new failed');
      l.bufOut(ctx);
      l.bufErr(ctx);
      return new Nft(ctx);
    };
    return netnsFd === undefined ? make() : inNetns(netnsFd, make);
  }

  /** Runs a script (native nft syntax) as one transaction: all of it applies, or none. Returns stdout. */
  run(script: string, json = false): string {
    const l = load();
    l.setFlags(this.ctx, json ? NFT_CTX_OUTPUT_JSON : 0);
    const rc = l.run(this.ctx, script) as number;
    const out = (l.getOut(this.ctx) as string | null) ?? '';
    const err = (l.getErr(this.ctx) as string | null) ?? '';
    if (rc !== 0) {
      const first = err.split('\n').find((s) => s.trim()) ?? 'unknown error';
      throw new NftError(`nftables: ${first.trim()}`, script);
    }
    return out;
  }

  /** Lists nsnet's view of a table as JSON (null when it does not exist). */
  listTable(family: string, name: string): unknown | null {
    try {
      return JSON.parse(this.run(`list table ${family} ${name}`, true));
    } catch (e) {
      if (e instanceof NftError && /No such file or directory/.test(e.message)) return null;
      throw e;
    }
  }

  close(): void {
    if (this.ctx) load().ctxFree(this.ctx);
    this.ctx = null;
  }
}
