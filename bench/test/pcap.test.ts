// The capture reader on a real recording: one live migration between two lab
// hosts (bench/src/lab-migration.ts with BENCH_KEEP_CAPTURE=1), trimmed to the
// first and last frames of its stream; the sidecar JSON holds what the
// XenMigration reported and the frames kept.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { linkSegments, traceConnection } from "../src/pcap.ts";

const fixture = join(import.meta.dirname, "fixtures/lab-migration.pcap");
const facts = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures/lab-migration.json"), "utf8")) as {
  client: string;
  server: string;
  port: number;
  createdMs: number;
  frames: number;
  bytesTransferred: number;
  fromWholeCapture: { clientBytes: number; toConnectMs: number; toFirstByteMs: number };
};

describe("pcap: migration streams on the lab's links", () => {
  it("reads every recorded frame as a TCP segment of the guest network, in time order", () => {
    const segs = linkSegments(fixture);
    assert.equal(segs.length, facts.frames);
    for (let i = 1; i < segs.length; i++) assert.ok((segs[i]?.t ?? 0) >= (segs[i - 1]?.t ?? 0));
    const ends = new Set(segs.map((s) => `${s.src}>${s.dst}`));
    assert.deepEqual([...ends].sort(), [`${facts.client}>${facts.server}`, `${facts.server}>${facts.client}`].sort());
    assert.ok(segs.every((s) => s.t > facts.createdMs && s.t < facts.createdMs + 3_600_000));
    // Full-sized frames of the bulk stream: 1448 bytes of payload with TCP timestamps.
    assert.ok(segs.some((s) => s.payload === 1448));
  });

  it("traces the stream: opened, handshakes, xl's bulk, the handover, closed", () => {
    const c = traceConnection(linkSegments(fixture), facts.client, facts.server, facts.port, facts.createdMs);
    assert.ok(c);
    assert.ok(c.syn > facts.createdMs);
    assert.ok(c.firstPayload > c.syn);
    assert.ok(c.bulkStart !== undefined && c.bulkStart > c.firstPayload, JSON.stringify(c));
    assert.ok(c.lastPayload > c.bulkStart);
    assert.ok(c.fin !== undefined && c.fin > c.bulkStart, JSON.stringify(c));
    // Counted from sequence numbers, so the frames trimmed away still count: TLS adds a little.
    assert.ok(c.clientBytes >= facts.bytesTransferred, `${c.clientBytes} < ${facts.bytesTransferred}`);
    assert.ok(c.clientBytes < facts.bytesTransferred * 1.05, `${c.clientBytes} vs ${facts.bytesTransferred}`);
    // The frames kept hold the stream's ends: the same trace as the whole capture gave.
    const whole = facts.fromWholeCapture;
    assert.equal(c.clientBytes, whole.clientBytes);
    assert.ok(Math.abs(c.syn - facts.createdMs - whole.toConnectMs) < 0.01);
    assert.ok(Math.abs((c.bulkStart ?? 0) - facts.createdMs - whole.toFirstByteMs) < 0.01);
  });

  it("finds no stream to another port, nor one opened the other way", () => {
    const segs = linkSegments(fixture);
    assert.equal(traceConnection(segs, facts.client, facts.server, facts.port + 1, facts.createdMs), undefined);
    assert.equal(traceConnection(segs, facts.server, facts.client, facts.port, facts.createdMs), undefined);
  });

  it("names a file that is not a capture", () => {
    const bad = join(tmpdir(), `not-a-pcap-${process.pid}`);
    writeFileSync(bad, "hello, this is not a capture at all");
    assert.throws(() => linkSegments(bad), /not a pcap file/);
  });
});
