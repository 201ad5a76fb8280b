// The domain model shared by every layer. Plain data only: no behaviour, no imports.

export type Proto = 'tcp' | 'udp';

/** One published port range, as `-p [HOSTIP:][HOSTPORT[-END]:]CPORT[-END][/proto]` after parsing and
 *  after ephemeral host ports were chosen. A single port is a range of length 1. */
export interface PortMapping {
  /** '' means every host address (0.0.0.0 and, on a network with IPv6, [::]). Otherwise one IPv4 address of the
   *  host, or one IPv6 address (canonical, without brackets: `-p [2001:db8::1]:8080:80`). */
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
  /** The network driver (src/drivers/registry.ts): 'bridge' today. */
  driver: string;
  /** Name of the Linux bridge in the host netns (<= 15 bytes). */
  bridge: string;
  /** IPv4 CIDR in canonical form, e.g. "172.18.0.0/16"; '' on an IPv6-only network (--ipv4=false). */
  subnet: string;
  /** IPv4 gateway; '' on an IPv6-only network. */
  gateway: string;
  /** Sub-range containers' dynamic addresses come from; null = the whole subnet. */
  ipRange: string | null;
  /** Docker's EnableIPv6: the network has an IPv6 subnet (subnet6, gateway6 set). The IPv6 fields are optional so
   *  that records made by code that knows nothing of IPv6 (tests, drivers, rebuild) stay valid: absent = no IPv6;
   *  the store always fills them. */
  enableIPv6?: boolean;
  /** IPv6 subnet in canonical form (RFC 5952), e.g. "fd3a:1b2c:3d4e::/64"; null without IPv6. One per family: the
   *  IPv4 fields above stay what every IPv4 caller reads, the IPv6 ones sit beside them (see networkSubnets). */
  subnet6?: string | null;
  /** IPv6 gateway on the bridge (default ::1 of subnet6); null without IPv6. */
  gateway6?: string | null;
  ipRange6?: string | null;
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
  /** IPv4 address; '' on an IPv6-only network. */
  ip: string;
  /** IPv6 address (canonical) on a network with IPv6, else null. */
  ip6?: string | null;
  mac: string;
  /** Extra DNS names for this container on this network. */
  aliases: string[];
  /** Address was given by the user (--ip): kept as is, never handed out dynamically. */
  staticIp: boolean;
  /** The IPv6 address was given by the user (--ip6). */
  staticIp6?: boolean;
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
    /** The IPv6 subnet and gateway (absent: IPv4 only). `subnet`/`gateway` are '' on an IPv6-only network. */
    subnet6?: string;
    gateway6?: string;
    /** Docker's gateway_mode_ipv6: 'nat' (default: NAT66 masquerade) or 'routed' (no NAT, only published ports
     *  reachable, at the container's own address). */
    gatewayMode6?: 'nat' | 'routed';
  }>;
  /** Published ports with the container address(es) they lead to: containerIp (IPv4, '' on an IPv6-only
   *  network) and containerIp6 (absent on an IPv4-only network). A port without a host address is published in
   *  each family the container has; one with a host address in that address's family. */
  ports: Array<PortMapping & { containerId: string; containerIp: string; containerIp6?: string; networkId: string;
    /** Its network's IPv6 is routed (gateway_mode_ipv6=routed): the IPv6 side opens the container port, no DNAT. */
    routed6?: boolean }>;
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

/** An endpoint another host of the cluster has on an overlay network (src/cluster/, src/drivers/overlay.ts), as the local
 *  store mirrors it from the cluster. */
export interface RemoteEndpoint {
  networkId: string;
  /** Cluster-wide key of the endpoint (its host and container). */
  key: string;
  /** The host that has it, and that host's underlay address (the VXLAN tunnel's far end). */
  host: string;
  underlay: string;
  /** Container name and aliases: DNS names on the network. */
  name: string;
  aliases: string[];
  ip: string | null;
  ip6: string | null;
  mac: string;
}
