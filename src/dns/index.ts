// The embedded resolver for user-defined networks (Docker's embedded DNS, Podman's aardvark-dns).
//
// Files:
//   wire.ts    hand-written DNS wire code for the hot path: parse header + question + EDNS OPT, build replies by
//              copying the question and appending records (no dns-packet at run time; it is used by the tests).
//   answer.ts  the pure core: DnsView (from the engine), indexView() -> IndexedView (per network: Map name ->
//              addresses, Map address -> PTR name; O(entries) to build), answer() (O(1) per query).
//   forward.ts upstream forwarding: UDP from a small socket pool (random ids, replies checked against the upstream
//              and the question), TCP when the client used TCP or the answer came back truncated; upstreams in
//              order within a 2 s budget; SERVFAIL/REFUSED -> next upstream.
//   server.ts  Resolver: one UDP socket + one TCP listener per gateway address (never 0.0.0.0): the local address
//              a query arrives on tells the network. setView swaps the index in one assignment and (re)binds only
//              the addresses that changed; unbindable addresses are retried.
//   load.ts    loadView(): where the process gets its view (today the JSON file the engine writes).
//   main.ts    the long-lived process: --view FILE [--pidfile F] [--port N] [--ttl S]; SIGHUP reloads and
//              acknowledges in FILE.loaded; SIGTERM exits 0; SIGUSR2 prints stats; one stderr line per problem;
//              follows the host's resolv.conf named in the view.
//   supervisor.ts  what the engine starts: runs main.ts as its child and restarts it (with backoff) when it dies.
//   files.ts   the files under <root>/dns/: written aside and renamed, or opened O_NOFOLLOW, regular files only.
//
// Shared resources are shared fairly: TCP connections per listening address (256) with at most 16 per source
// and the heaviest source's oldest connection closed for a newcomer when all are taken, each whole message within
// 3 s, and no more queries read from a connection while 256 KiB of its replies wait to be sent; queries waiting
// for upstreams (4096) with at most 256 per source, the heaviest source's oldest query
// giving way (SERVFAIL) to a newcomer when all are taken.
//
// Semantics: a query arriving on network N's gateway from address X is answered from N's names, then from the
// names of X's other networks (X is a container on several networks: Docker resolves those too); askers outside
// N's subnet are REFUSED (no reading another network's names by routing to its gateway). Names: container name,
// aliases, short id, each also as "name.network" (a real name wins over such a form: container "web.hn" over
// container web's "web.hn"); ASCII case-insensitive; trailing dot optional. "name.network" of a container on a
// network the asker is not on, and PTRs of any nsnet subnet, are NXDOMAIN, never forwarded. A -> addresses
// (several for a shared alias, rotated); AAAA and other types of a known name -> NODATA; PTR for the asker's
// networks' containers ("name.network"); unknown single labels and unknown addresses of those subnets ->
// NXDOMAIN; everything else forwarded (the asker's --dns servers instead of the host's; a --dns that is this
// resolver itself is dropped, leaving the host's), except on internal networks (REFUSED).
// TTL 5 s (see DEFAULT_TTL). Replies over 512 bytes (or the EDNS size, capped at 1232) carry what fits and TC.
export { answer, answerOn, dnsNameProblem, indexView, nameKey, parseUpstream, upstreamsFor, DEFAULT_TTL } from './answer.js';
export type { DnsView, IndexedView, NetIndex, Upstream } from './answer.js';
export { Resolver } from './server.js';
export type { ResolverOptions, ResolverStats } from './server.js';
export { loadView, validateView } from './load.js';
export { parseResolvConf, renderResolvConf } from './resolvconf.js';
export type { ResolvConf } from './resolvconf.js';
