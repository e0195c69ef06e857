// Reads a tcpdump capture of the lab's host-to-host links: each link is QEMU's
// UDP socket netdev on loopback, one guest Ethernet frame per datagram, so the
// capture holds every frame between the hosts stamped with this machine's
// clock. Yields the TCP segments inside (IPv4 only: the links carry nothing else
// the benchmark looks at).
import { readFileSync } from "node:fs";

export interface TcpSegment {
  /** Capture time, ms since the epoch (microsecond resolution). */
  t: number;
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  seq: number;
  syn: boolean;
  fin: boolean;
  /** TCP payload bytes (from the IP header: the capture keeps headers only). */
  payload: number;
}

const LINKTYPE_ETHERNET = 1;
const ETH_IPV4 = 0x0800;
const PROTO_UDP = 17;
const PROTO_TCP = 6;

const ipv4 = (b: Buffer, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/** TCP segments carried in the guest frames of a capture on `lo` (tcpdump -w, snaplen ≥ 110). */
export function linkSegments(file: string): TcpSegment[] {
  const b = readFileSync(file);
  if (b.length < 24) throw new Error(`${file}: not a pcap file (${b.length} bytes)`);
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && b.readUInt32BE(0) !== 0xa1b2c3d4 && b.readUInt32BE(0) !== 0xa1b23c4d)
    throw new Error(`${file}: not a pcap file (magic ${magic.toString(16)})`);
  const u32 = (at: number) => (le ? b.readUInt32LE(at) : b.readUInt32BE(at));
  const nanos = (le ? magic : b.readUInt32BE(0)) === 0xa1b23c4d;
  const linkType = u32(20);
  if (linkType !== LINKTYPE_ETHERNET) throw new Error(`${file}: link type ${linkType}, expected Ethernet (lo)`);
  const out: TcpSegment[] = [];
  let at = 24;
  while (at + 16 <= b.length) {
    const t = u32(at) * 1000 + u32(at + 4) / (nanos ? 1e6 : 1e3);
    const caplen = u32(at + 8);
    const rec = at + 16;
    at = rec + caplen;
    if (at > b.length) break; // a record cut short by the capture's end
    const seg = outerToSegment(b, rec, rec + caplen, t);
    if (seg) out.push(seg);
  }
  return out;
}

/** Outer Ethernet/IPv4/UDP on lo, then the guest's Ethernet/IPv4/TCP headers. */
export function outerToSegment(b: Buffer, start: number, end: number, t: number): TcpSegment | undefined {
  let p = start;
  if (end - p < 14 || b.readUInt16BE(p + 12) !== ETH_IPV4) return undefined;
  p += 14;
  if (b[p + 9] !== PROTO_UDP) return undefined;
  p += ((b[p] ?? 0) & 0x0f) * 4 + 8; // outer IP header, UDP header
  // The guest's frame.
  if (end - p < 14 || b.readUInt16BE(p + 12) !== ETH_IPV4) return undefined;
  p += 14;
  if (end - p < 20 || b[p + 9] !== PROTO_TCP) return undefined;
  const ihl = ((b[p] ?? 0) & 0x0f) * 4;
  const total = b.readUInt16BE(p + 2);
  const src = ipv4(b, p + 12);
  const dst = ipv4(b, p + 16);
  const tcp = p + ihl;
  if (end - tcp < 14) return undefined;
  const dataOffset = ((b[tcp + 12] ?? 0) >> 4) * 4;
  const flags = b[tcp + 13] ?? 0;
  return {
    t,
    src,
    srcPort: b.readUInt16BE(tcp),
    dst,
    dstPort: b.readUInt16BE(tcp + 2),
    seq: b.readUInt32BE(tcp + 4),
    syn: (flags & 0x02) !== 0,
    fin: (flags & 0x01) !== 0,
    payload: Math.max(0, total - ihl - dataOffset),
  };
}

export interface Connection {
  /** The SYN, ms since the epoch. */
  syn: number;
  /** The client's first payload byte (its TLS ClientHello). */
  firstPayload: number;
  /**
   * The first byte of the bulk stream: the client's first payload after the server's last message
   * before the client had sent `bulkAfter` bytes (the handshakes are done; the server listens).
   */
  bulkStart?: number;
  /** The last payload in either direction (the end of the handover). */
  lastPayload: number;
  fin?: number;
  /** Bytes the client sent, from its sequence numbers (robust to segments the capture dropped). */
  clientBytes: number;
}

/**
 * The first TCP connection from `client` to `server:port` opened at or after `sinceMs`, traced
 * through its segments in both directions.
 */
export function traceConnection(
  segs: TcpSegment[],
  client: string,
  server: string,
  port: number,
  sinceMs: number,
  bulkAfter = 64 * 1024,
): Connection | undefined {
  const syn = segs.find((s) => s.t >= sinceMs && s.syn && s.src === client && s.dst === server && s.dstPort === port);
  if (!syn) return undefined;
  const fromClient = (s: TcpSegment) =>
    s.src === client && s.srcPort === syn.srcPort && s.dst === server && s.dstPort === port;
  const fromServer = (s: TcpSegment) =>
    s.src === server && s.srcPort === port && s.dst === client && s.dstPort === syn.srcPort;
  const mine = segs.filter((s) => s.t >= syn.t && (fromClient(s) || fromServer(s)));
  const data = mine.filter((s) => s.payload > 0);
  const first = data.find(fromClient);
  const last = data.at(-1);
  if (!first || !last) return undefined;
  // Offsets in the client's byte stream; sequence space wraps at 2^32 and starts one past the SYN's.
  const offset = (s: TcpSegment) => ((s.seq - syn.seq - 1 + 2 ** 32) % 2 ** 32) + s.payload;
  let end = 0;
  let lastServer = Number.NEGATIVE_INFINITY;
  let bulkStart: number | undefined;
  for (const s of data) {
    if (!fromClient(s)) {
      if (bulkStart === undefined) lastServer = s.t;
      continue;
    }
    end = Math.max(end, offset(s));
    if (bulkStart === undefined && end >= bulkAfter) bulkStart = data.find((x) => fromClient(x) && x.t > lastServer)?.t;
  }
  return {
    syn: syn.t,
    firstPayload: first.t,
    bulkStart,
    lastPayload: last.t,
    fin: mine.find((s) => s.fin)?.t,
    clientBytes: end,
  };
}
