// The domain model shared by every layer. Plain data only: no behaviour, no imports.

export type Proto = 'tcp' | 'udp';

/** One published port range, as `-p [HOSTIP:][HOSTPORT[-END]:]CPORT[-END][/proto]` after parsing and
 *  after ephemeral host ports were chosen. A single port is a range of length 1. */
export interface PortMapping {
  /** '' means every host address (0.0.0.0). Otherwise one IPv4 address of the host. */
  hostIp: string;
  hostPort: number;
  hostPortEnd: number;
  containerPort: number;
  containerPortEnd: number;
  proto: Proto;
}

export interface NetworkRecord {
  /** 64 lowercase hex characters, like Docker's network IDs. */
  id: string;
  name: string;
  driver: 'bridge';
  /** Name of the Linux bridge in the host netns (<= 15 bytes). */
  bridge: string;
  /** IPv4 CIDR in canonical form, e.g. "172.18.0.0/16". */
  subnet: string;
  gateway: string;
  /** Sub-range containers' dynamic addresses come from; null = the whole subnet. */
  ipRange: string | null;
  internal: boolean;
  /** Inter-container communication on this network (Docker's com.docker.network.bridge.enable_icc). */
  icc: boolean;
  mtu: number;
  /** The default network named "bridge" (Docker's docker0): no embedded DNS, no static --ip. */
  isDefault: boolean;
  labels: Record<string, string>;
  options: Record<string, string>;
  /** ISO-8601 */
  created: string;
}

export type NetworkMode = 'bridge' | 'host' | 'none' | 'container';

export interface EndpointRecord {
  containerId: string;
  containerName: string;
  networkId: string;
  /** Interface name inside the container (eth0, eth1, ...). */
  ifname: string;
  /** Host-side veth name, on the network's bridge. */
  hostIf: string;
  ip: string;
  mac: string;
  /** Extra DNS names for this container on this network. */
  aliases: string[];
  /** Address was given by the user (--ip): kept as is, never handed out dynamically. */
  staticIp: boolean;
}

export type ContainerState = 'created' | 'running' | 'exited';

export interface ContainerRecord {
  id: string;
  name: string;
  mode: NetworkMode;
  /** For mode 'container': the id of the container whose netns is shared. */
  modeTarget: string | null;
  /** Name under /run/netns of the container's own netns ('' for host/container modes). */
  netns: string;
  command: string[];
  ports: PortMapping[];
  /** DNS servers given with --dns (override the upstreams for this container). */
  dns: string[];
  autoRemove: boolean;
  state: ContainerState;
  pid: number | null;
  /** Process start time (field 22 of /proc/PID/stat): with pid, identifies the process despite PID reuse. */
  pidStart: string | null;
  exitCode: number | null;
  created: string;
  started: string | null;
  finished: string | null;
  /** A process was started in its netns at some point (start/run/exec): processes may be left inside. */
  used: boolean;
}

/** What the firewall generator needs to know: derived from the store, nothing else. */
export interface FirewallState {
  networks: Array<Pick<NetworkRecord, 'id' | 'name' | 'bridge' | 'subnet' | 'gateway' | 'internal' | 'icc'> & {
    /** false: no masquerade of its outbound traffic (Docker's enable_ip_masquerade=false); absent = true. */
    masquerade?: boolean;
  }>;
  /** Published ports with the container address they lead to. */
  ports: Array<PortMapping & { containerId: string; containerIp: string; networkId: string }>;
  /** Partitions (`nsnet partition`), at most one per network; absent or empty: none. */
  partitions?: PartitionState[];
}

/** A container of a partitioned network as the firewall cuts it: its host-side veth and its address there. */
export interface PartitionMember {
  containerId: string;
  hostIf: string;
  ip: string;
}

/** One network's partition for the firewall generator: the groups as listed (members that have an endpoint on
 *  the network now; a group may be empty), and `rest`, the network's other containers (one more group, unless
 *  --oneway). `oneway`: exactly two groups, traffic from the first to the second is dropped, nothing else. */
export interface PartitionState {
  networkId: string;
  id: string;
  oneway: boolean;
  groups: PartitionMember[][];
  rest: PartitionMember[];
}
