// Link helpers every driver and the engine's clean-up share: nsnet deletes only links that carry its owner mark.
import { NetlinkError, type NetlinkPort } from '../kernel/netlink.js';

type Owns = (alias: string | null | undefined) => boolean;

/** The link named `name` if nsnet made it on this host (its alias carries the host's mark), else null. */
export function ownedLink(nl: NetlinkPort, owns: Owns, name: string): { index: number } | null {
  const link = nl.linkByName(name);
  return link && owns(link.alias) ? link : null;
}

/** Deletes a link; tolerates its being gone already. */
export function removeLink(nl: NetlinkPort, index: number): void {
  try {
    nl.deleteLink(index);
  } catch (e) {
    if (!(e instanceof NetlinkError) || e.code !== 'ENODEV') throw e;
  }
}

/** Deletes the link named `name` if it is nsnet's; true if there was one. */
export function removeOwnedLink(nl: NetlinkPort, owns: Owns, name: string): boolean {
  const l = ownedLink(nl, owns, name);
  if (l) removeLink(nl, l.index);
  return l !== null;
}
