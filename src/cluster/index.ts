// The cluster coordination layer (issue #17): the library API the overlay driver and the CLI use.
export { Cluster, type ClusterOptions, type NetworkSpec, type EndpointSpec, type ReconcileResult } from './cluster.js';
export { ClusterUnavailable, NotJoined, parseEndpoints } from './errors.js';
export { Keys, DEFAULT_PREFIX, prefixEnd } from './keys.js';
export { VNI_MIN, VNI_MAX, OVERLAY_POOL, OVERLAY_POOL_BITS, macFor } from './alloc.js';
export { ClusterDataError, VALUE_VERSION, type HostRecord, type NetworkRecord, type AddressRecord, type EndpointRecord } from './values.js';
export { NetworkWatch, PrefixWatch, type NetworkEvent, type HostEvent } from './watch.js';
