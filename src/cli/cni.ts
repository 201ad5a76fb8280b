// `nsnet cni`: nsnet as a CNI plugin (bin/cni/nsnet execs this). The runtime says what to do in CNI_* variables and
// writes the network configuration on stdin; the answer is a result (or nothing) on stdout with exit 0, or the
// spec's error object on stdout with exit 1. Logs go to stderr only. Served by the resident helper like other
// commands (its stdin travels with the request: CommandIO.input).
import type { Command } from 'commander';
import type { Host } from '../engine/host.js';
import { io } from './io.js';

export function registerCni(program: Command, openHost: (root?: string) => Promise<Host>): void {
  program.command('cni', { hidden: true })
    .description('run as a CNI plugin (CNI_COMMAND and the other CNI_* variables; the configuration on stdin)')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async () => {
      const P = await import('../cni/protocol.js');
      let version = '1.1.0';
      try {
        const env = P.parseEnv(io().env);
        let raw: Buffer;
        try {
          raw = io().input();
        } catch (e) {
          throw new P.CniError(P.CODES.io, 'failed to read the network configuration from stdin', (e as Error).message);
        }
        if (env.command === 'VERSION') {
          // The runtime asks which versions exist: answer even for a version nsnet does not speak.
          const v = raw.length ? (P.decodeConfig(raw).cniVersion as unknown) : undefined;
          io().out(JSON.stringify(P.versionResult(typeof v === 'string' && v ? v : version)));
          return;
        }
        const obj = P.decodeConfig(raw);
        if (typeof obj.cniVersion === 'string' && obj.cniVersion) version = obj.cniVersion;
        const conf = P.parseConfig(obj, env);
        const h = await openHost(conf.root);
        const E = await import('../engine/cni.js');
        switch (env.command) {
          case 'ADD':
            io().out(JSON.stringify(E.cniAdd(h, env, conf)));
            break;
          case 'DEL':
            E.cniDel(h, env, conf);
            break;
          case 'CHECK':
            E.cniCheck(h, env, conf);
            break;
          case 'GC':
            for (const a of E.cniGc(h, conf)) io().err(`nsnet: GC removed attachment ${a}\n`);
            break;
          case 'STATUS':
            E.cniStatus(h, conf);
            break;
        }
      } catch (e) {
        const err = e instanceof P.CniError ? e
          : new P.CniError(P.CODES.internal, (e as Error).message.split('\n')[0], io().env.NSNET_DEBUG ? String((e as Error).stack) : '');
        if (io().env.NSNET_DEBUG) io().err(String((e as Error).stack) + '\n');
        io().out(JSON.stringify(P.errorResult(version, err)));
        io().status = 1;
      }
    });
}
