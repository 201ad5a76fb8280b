// Node built-ins that cost a CLI command start-up time when loaded and that most commands never use: loaded on
// first use. child_process pulls in net, stream and dgram (≈4 ms of module evaluation, measured with a CPU
// profile of `nsnet ps`); only the commands that start processes need it.
import type * as ChildProcessModule from 'node:child_process';

let cp: typeof ChildProcessModule | undefined;
/** node:child_process, loaded on first use (process.getBuiltinModule: Node ≥ 20.16). */
export function childProcess(): typeof ChildProcessModule {
  return (cp ??= process.getBuiltinModule('node:child_process') as typeof ChildProcessModule);
}
