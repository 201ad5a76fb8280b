// The network drivers nsnet knows, keyed by NetworkRecord.driver. The engine asks here and never names a driver.
import type { NetworkRecord } from '../types.js';
import { bridgeDriver } from './bridge.js';
import type { NetworkDriver } from './driver.js';
import { overlayDriver } from './overlay.js';

const drivers = new Map<string, NetworkDriver>([[bridgeDriver.name, bridgeDriver], [overlayDriver.name, overlayDriver]]);

/** The driver networks get when `network create` names none (Docker's default too). */
export const DEFAULT_DRIVER = bridgeDriver.name;

/** Adds a driver (a test's, or one loaded later); a name already taken is refused. */
export function registerDriver(d: NetworkDriver): void {
  if (drivers.has(d.name)) throw new Error(`network driver ${d.name} is registered already`);
  drivers.set(d.name, d);
}

export function hasDriver(name: string): boolean {
  return drivers.has(name);
}

export function driverNames(): string[] {
  return [...drivers.keys()];
}

/** The driver of a network (or of a driver name). A record naming an unknown driver is a damaged store. */
export function driverOf(n: NetworkRecord | string): NetworkDriver {
  const name = typeof n === 'string' ? n : n.driver;
  const d = drivers.get(name);
  if (!d) throw new Error(`network driver ${JSON.stringify(name)} is not known to this nsnet (known: ${driverNames().join(', ')})`);
  return d;
}
