// The embedded resolver's public API (the process entry is main.ts).
export { answer, answerOn, indexView, nameKey, parseUpstream, upstreamsFor, DEFAULT_TTL } from './answer.js';
export type { DnsView, IndexedView, NetIndex, Upstream } from './answer.js';
export { Resolver } from './server.js';
export type { ResolverOptions, ResolverStats } from './server.js';
export { loadView, validateView } from './load.js';
export { parseResolvConf, renderResolvConf } from './resolvconf.js';
export type { ResolvConf } from './resolvconf.js';
