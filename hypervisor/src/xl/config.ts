// xl.cfg (xl.cfg(5)): built from a XenDomain spec, written and read back by
// an emitter and a parser that round-trip. Values are strings, numbers or
// lists of them, as xl's libxlu config syntax allows.
import { quantityMiB } from "@kubexen/crds";
import type { DomainConfig } from "../types.ts";

export type XlValue = string | number | XlValue[];
export type XlConfig = Record<string, XlValue>;

/** The xl.cfg for a domain. on_crash preserves the domain so the agent sees the crash; poweroff destroys it. */
export function toXlConfig(c: DomainConfig): XlConfig {
  const s = c.spec;
  const cfg: XlConfig = {
    name: c.name,
    uuid: c.uuid,
    type: s.type,
    memory: quantityMiB(s.memory),
    maxmem: quantityMiB(s.maxMemory ?? s.memory),
    vcpus: s.vcpus,
    maxvcpus: s.maxVcpus ?? s.vcpus,
    on_poweroff: "destroy",
    on_reboot: "restart",
    on_crash: "preserve",
  };
  const b = s.boot;
  if (b?.kernel) cfg.kernel = b.kernel;
  if (b?.ramdisk) cfg.ramdisk = b.ramdisk;
  if (b?.cmdline) cfg.cmdline = b.cmdline;
  if (b?.bootloader) cfg.bootloader = b.bootloader;
  if (s.type === "hvm") {
    cfg.bios = b?.firmware === "uefi" ? "ovmf" : "seabios";
    cfg.serial = "pty";
  }
  if (s.disks?.length) {
    cfg.disk = s.disks.map((d) =>
      [
        `format=${d.format}`,
        `vdev=${d.vdev}`,
        `access=${d.access}`,
        ...(d.devtype === "cdrom" ? ["devtype=cdrom"] : []),
        `target=${d.source}`,
      ].join(", "),
    );
  }
  if (s.networks?.length) {
    cfg.vif = s.networks.map((n, i) => {
      const parts = [`mac=${c.macs[i] ?? n.mac ?? ""}`, `bridge=${n.bridge}`];
      if (n.model && s.type === "hvm") parts.push(`model=${n.model === "virtio-net" ? "e1000" : n.model}`);
      if (n.ip) parts.push(`ip=${n.ip}`);
      if (n.rateLimitMbps) parts.push(`rate=${n.rateLimitMbps}Mb/s`);
      return parts.join(", ");
    });
  }
  if (s.cpu?.pinning && s.cpu.pinning !== "all") cfg.cpus = s.cpu.pinning;
  if (s.cpu?.weight !== undefined) cfg.cpu_weight = s.cpu.weight;
  if (s.cpu?.cap) cfg.cap = s.cpu.cap;
  if (s.pciDevices?.length) cfg.pci = [...s.pciDevices];
  return cfg;
}

function quote(s: string): string {
  if (/[\n\r]/.test(s)) throw new Error(`xl.cfg: a value cannot span lines: ${JSON.stringify(s)}`);
  return s.includes('"') ? `'${s.replaceAll("'", "")}'` : `"${s}"`;
}

function emitValue(v: XlValue): string {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error(`xl.cfg: not a finite number: ${v}`);
    return String(v);
  }
  if (typeof v === "string") return quote(v);
  return `[ ${v.map(emitValue).join(", ")} ]`;
}

/** Writes an xl.cfg file's text. */
export function emitXlConfig(cfg: XlConfig): string {
  return `${Object.entries(cfg)
    .map(([k, v]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`xl.cfg: invalid key ${JSON.stringify(k)}`);
      return `${k} = ${emitValue(v)}`;
    })
    .join("\n")}\n`;
}

/** Reads an xl.cfg file's text (comments, strings in either quote, numbers, nested lists). */
export function parseXlConfig(text: string): XlConfig {
  let i = 0;
  let line = 1;
  const err = (msg: string) => new Error(`xl.cfg line ${line}: ${msg}`);
  const skip = (newlines: boolean) => {
    for (;;) {
      const ch = text[i];
      if (ch === "#") while (i < text.length && text[i] !== "\n") i++;
      else if (ch === " " || ch === "\t" || ch === "\r") i++;
      else if (ch === "\n" && newlines) {
        i++;
        line++;
      } else return;
    }
  };
  const value = (): XlValue => {
    skip(true);
    const ch = text[i];
    if (ch === '"' || ch === "'") {
      const end = text.indexOf(ch, i + 1);
      if (end < 0 || text.slice(i + 1, end).includes("\n")) throw err("unterminated string");
      const s = text.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    if (ch === "[") {
      i++;
      const list: XlValue[] = [];
      for (;;) {
        skip(true);
        if (text[i] === "]") {
          i++;
          return list;
        }
        list.push(value());
        skip(true);
        if (text[i] === ",") i++;
        else if (text[i] !== "]")
          throw err(`expected , or ] in a list, found ${JSON.stringify(text[i] ?? "end of file")}`);
      }
    }
    const m = /^-?(0x[0-9a-fA-F]+|[0-9]+)/.exec(text.slice(i));
    if (!m) throw err(`expected a value, found ${JSON.stringify(text.slice(i, i + 10))}`);
    i += m[0].length;
    return Number(m[0]);
  };
  const cfg: XlConfig = {};
  for (;;) {
    skip(true);
    if (i >= text.length) return cfg;
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (!m) throw err(`expected a key, found ${JSON.stringify(text.slice(i, i + 10))}`);
    i += m[0].length;
    if (m[0] === "__proto__") throw err("invalid key __proto__");
    skip(false);
    if (text[i] !== "=") throw err(`expected = after ${m[0]}`);
    i++;
    cfg[m[0]] = value();
    skip(false);
    if (text[i] === ";") i++;
    skip(false);
    if (i < text.length && text[i] !== "\n" && text[i] !== "#")
      throw err(`unexpected ${JSON.stringify(text[i])} after the value of ${m[0]}`);
  }
}
