// xl.cfg (xl.cfg(5)): built from a XenDomain spec, written by the one emitter
// below and read back by a parser that reads exactly as libxlu does.
//
// The grammar is libxlu's (Xen 4.17, tools/libs/util/libxlu_cfg_l.l,
// libxlu_cfg_y.y, libxlu_cfg.c):
// - a key is [a-z][._0-9a-z]*; `key = value` or `key += value`, ended by a
//   newline or `;`; `#` comments run to the newline (one is required after
//   them); only space and tab are blanks (a `\r` is a lexical error);
// - a number is [0-9][0-9a-fx]* and is kept as its text (no sign, no
//   fraction), which xl reads with strtol(..., 0): 0x1f is 31, 010 is 8;
// - a string is quoted with ' or " and may not contain a raw newline; inside,
//   a backslash escapes \ " ' a b f n r t v; `\x..` always fails and an octal
//   escape `\0nn` drops its character (bugs of xlu__cfgl_dequote), so neither
//   is ever written; a NUL cannot be carried;
// - a list is [ value, ... ] (nested lists allowed, newlines allowed inside).
// Strings from a tenant's XenDomain are hostile: the emitter writes every
// string double-quoted with only `\"` and `\\` escaped, and refuses control
// characters and lone surrogates, so the bytes libxlu reads are the intended
// string's UTF-8. The sub-syntaxes xl parses inside some strings (disk, vif,
// pci, cpus) are checked by toXlConfig, which names the XenDomain field.
import { quantityMiB } from "@kubexen/crds";
import { HypervisorError } from "../errors.ts";
import type { DomainConfig } from "../types.ts";

export type XlValue = string | number | XlValue[];
export type XlConfig = Record<string, XlValue>;

const KEY = /^[a-z][._0-9a-z]*$/;

const show = (s: string) => JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
const invalid = (field: string, why: string) => new HypervisorError("InvalidConfig", `${field}: ${why}`);

/** Text any xl.cfg string can carry byte for byte: no control character (C0, DEL, C1), no lone surrogate. */
function text(field: string, v: unknown): string {
  if (typeof v !== "string") throw invalid(field, `must be a string, got ${typeof v}`);
  const m = /\p{Cc}/u.exec(v);
  if (m) {
    const cp = m[0].codePointAt(0) ?? 0;
    throw invalid(
      field,
      `must not contain control characters (U+${cp.toString(16).toUpperCase().padStart(4, "0")} at ${m.index}): ${show(v)}`,
    );
  }
  // a lone surrogate cannot be written as UTF-8 (it would become U+FFFD)
  if (!v.isWellFormed()) throw invalid(field, `is not well-formed Unicode (lone surrogate): ${show(v)}`);
  return v;
}

function matching(field: string, v: unknown, re: RegExp, what: string): string {
  const s = text(field, v);
  if (!re.test(s)) throw invalid(field, `must be ${what}, got ${show(s)}`);
  return s;
}

function oneOf<T extends string>(field: string, v: unknown, allowed: readonly T[]): T {
  const s = text(field, v);
  if (!(allowed as readonly string[]).includes(s))
    throw invalid(field, `must be one of ${allowed.join(", ")}, got ${show(s)}`);
  return s as T;
}

function integer(field: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max)
    throw invalid(field, `must be an integer from ${min} to ${max}, got ${String(v)}`);
  return v;
}

/**
 * A value of a disk or vif spec other than the disk's target. libxlu's disk
 * lexer (libxlu_disk_l.l) ends such a value at the first `,`; xl splits a vif
 * spec at every `,` and keys each piece by what precedes its first `=`
 * (xl_parse.c, parse_config_data and parse_nic_config).
 */
function specValue(field: string, v: unknown): string {
  const s = text(field, v);
  const bad = /[,=]/.exec(s);
  if (bad)
    throw invalid(field, `must not contain ${JSON.stringify(bad[0])} (it would split the xl device spec): ${show(s)}`);
  return s;
}

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
// six hex bytes as parse_nic_config reads them (strtoul base 16 each, so one digit is a byte too)
const MAC = /^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2}){5}$/;
// xl also uses the name in file names (/var/log/xen/xl-<name>.log): no `/`, no leading dot or dash
const DOMAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
// Linux interface names (IFNAMSIZ 16 with the NUL); the vif hotplug scripts use the name as given
const BRIDGE = /^[A-Za-z0-9_.-]{1,15}$/;
// addresses the vif scripts configure (xl-network-configuration(5)), separated by spaces
const IPS = /^[0-9A-Fa-f.:/]+( [0-9A-Fa-f.:/]+)*$/;
// what parse_cpurange (xl_parse.c) reads as CPU numbers and ranges; its other forms (nodes:, ^) are not offered
const CPUS = /^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$/;
// domain:bus:device.function, nothing after: a `,` would add libxlu_pci.c options (permissive, seize, ...)
const PCI_BDF = /^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/;

function diskSpec(d: NonNullable<DomainConfig["spec"]["disks"]>[number], i: number): string {
  const f = `spec.disks[${i}]`;
  const format = oneOf(`${f}.format`, d.format, ["raw", "qcow2", "qcow", "vhd"]);
  const vdev = specValue(`${f}.vdev`, d.vdev);
  if (vdev === "") throw invalid(`${f}.vdev`, "must not be empty");
  const access = oneOf(`${f}.access`, d.access, ["rw", "ro"]);
  const devtype = oneOf(`${f}.devtype`, d.devtype ?? "disk", ["disk", "cdrom"]);
  // target= takes the rest of the spec, commas included (xl-disk-configuration(5)), so it comes
  // last; the lexer strips one trailing comma from it, and an empty one means an empty drive
  const source = text(`${f}.source`, d.source);
  if (source === "") throw invalid(`${f}.source`, "must not be empty");
  if (source.endsWith(",")) throw invalid(`${f}.source`, `must not end with "," (xl would drop it): ${show(source)}`);
  return [
    `format=${format}`,
    `vdev=${vdev}`,
    `access=${access}`,
    ...(devtype === "cdrom" ? ["devtype=cdrom"] : []),
    `target=${source}`,
  ].join(", ");
}

function vifSpec(c: DomainConfig, n: NonNullable<DomainConfig["spec"]["networks"]>[number], i: number): string {
  const f = `spec.networks[${i}]`;
  const parts: string[] = [];
  const mac = c.macs[i] ?? n.mac;
  if (mac !== undefined) {
    const field = c.macs[i] !== undefined && c.macs[i] !== n.mac ? `status.interfaces[${i}].mac` : `${f}.mac`;
    parts.push(`mac=${matching(field, specValue(field, mac), MAC, "a MAC address such as 00:16:3e:2a:41:07")}`);
  }
  parts.push(
    `bridge=${matching(`${f}.bridge`, specValue(`${f}.bridge`, n.bridge), BRIDGE, "a bridge name ([A-Za-z0-9_.-], at most 15)")}`,
  );
  if (n.model !== undefined && c.spec.type === "hvm") {
    const model = oneOf(`${f}.model`, n.model, ["e1000", "rtl8139", "virtio-net"]);
    parts.push(`model=${model === "virtio-net" ? "e1000" : model}`);
  }
  if (n.ip !== undefined && n.ip !== "")
    parts.push(`ip=${matching(`${f}.ip`, specValue(`${f}.ip`, n.ip), IPS, "IP addresses separated by single spaces")}`);
  if (n.rateLimitMbps) parts.push(`rate=${integer(`${f}.rateLimitMbps`, n.rateLimitMbps, 1, 400_000)}Mb/s`);
  return parts.join(", ");
}

function pciSpec(v: unknown, i: number): string {
  const field = `spec.pciDevices[${i}]`;
  const s = matching(field, v, PCI_BDF, "a PCI address domain:bus:device.function such as 0000:03:00.0");
  // libxlu refuses device numbers above 0x1f: say so here, with the field
  if (Number.parseInt(s.slice(8, 10), 16) > 0x1f) throw invalid(field, `device number must be at most 1f: ${show(s)}`);
  return s;
}

function mib(field: string, q: Parameters<typeof quantityMiB>[0]): number {
  try {
    return quantityMiB(q);
  } catch (e) {
    throw invalid(field, e instanceof Error ? e.message : String(e));
  }
}

/** The xl.cfg for a domain. on_crash preserves the domain so the agent sees the crash; poweroff destroys it. */
export function toXlConfig(c: DomainConfig): XlConfig {
  const s = c.spec;
  const type = oneOf("spec.type", s.type, ["pvh", "hvm", "pv"]);
  const memory = integer("spec.memory", mib("spec.memory", s.memory), 1);
  const cfg: XlConfig = {
    name: matching("name", c.name, DOMAIN_NAME, "a domain name ([A-Za-z0-9_.-], starting with a letter or digit)"),
    uuid: matching("uuid", c.uuid, UUID, "a UUID"),
    type,
    memory,
    maxmem: integer("spec.maxMemory", s.maxMemory === undefined ? memory : mib("spec.maxMemory", s.maxMemory), 1),
    vcpus: integer("spec.vcpus", s.vcpus, 1),
    maxvcpus: integer("spec.maxVcpus", s.maxVcpus ?? s.vcpus, 1),
    on_poweroff: "destroy",
    on_reboot: "restart",
    on_crash: "preserve",
  };
  const b = s.boot;
  if (b?.kernel) cfg.kernel = text("spec.boot.kernel", b.kernel);
  if (b?.ramdisk) cfg.ramdisk = text("spec.boot.ramdisk", b.ramdisk);
  if (b?.cmdline) cfg.cmdline = text("spec.boot.cmdline", b.cmdline);
  if (b?.bootloader) cfg.bootloader = text("spec.boot.bootloader", b.bootloader);
  if (type === "hvm") {
    cfg.bios = b?.firmware === "uefi" ? "ovmf" : "seabios";
    cfg.serial = "pty";
  }
  if (s.disks?.length) cfg.disk = s.disks.map(diskSpec);
  if (s.networks?.length) cfg.vif = s.networks.map((n, i) => vifSpec(c, n, i));
  if (s.cpu?.pinning !== undefined && s.cpu.pinning !== "all")
    cfg.cpus = matching("spec.cpu.pinning", s.cpu.pinning, CPUS, "all or CPU numbers and ranges such as 0-3,6");
  if (s.cpu?.weight !== undefined) cfg.cpu_weight = integer("spec.cpu.weight", s.cpu.weight, 1, 65535);
  if (s.cpu?.cap) cfg.cap = integer("spec.cpu.cap", s.cpu.cap, 0, 51200);
  if (s.pciDevices?.length) cfg.pci = s.pciDevices.map(pciSpec);
  return cfg;
}

/** A string as libxlu reads it back byte for byte: double-quoted, `\` and `"` escaped. */
function quote(s: string, field: string): string {
  return `"${text(field, s).replace(/[\\"]/g, "\\$&")}"`;
}

function emitValue(v: XlValue, field: string): string {
  if (typeof v === "number") {
    // libxlu's numbers have no sign, fraction or exponent
    if (!Number.isSafeInteger(v) || v < 0) throw invalid(field, `must be a non-negative integer, got ${v}`);
    return String(v);
  }
  if (typeof v === "string") return quote(v, field);
  if (!Array.isArray(v)) throw invalid(field, `must be a string, a number or a list, got ${typeof v}`);
  return `[ ${v.map((x, i) => emitValue(x, `${field}[${i}]`)).join(", ")} ]`;
}

/** Writes an xl.cfg file's text: the only writer of xl.cfg, so the only place strings are quoted. */
export function emitXlConfig(cfg: XlConfig): string {
  return `${Object.entries(cfg)
    .map(([k, v]) => {
      if (!KEY.test(k)) throw invalid(`xl.cfg key ${JSON.stringify(k)}`, "invalid key (libxlu reads [a-z][._0-9a-z]*)");
      return `${k} = ${emitValue(v, `xl.cfg ${k}`)}`;
    })
    .join("\n")}\n`;
}

/** A number token's value as xl reads it (strtol with base 0), or undefined when strtol would refuse it. */
function xlNumber(t: string): number | undefined {
  const n = /^0x[0-9a-f]+$/.test(t)
    ? Number.parseInt(t.slice(2), 16)
    : /^0[0-7]*$/.test(t)
      ? Number.parseInt(t, 8)
      : /^[1-9][0-9]*$/.test(t)
        ? Number(t)
        : undefined;
  return n !== undefined && Number.isSafeInteger(n) ? n : undefined;
}

const ESCAPES: Record<string, string> = {
  '"': '"',
  "'": "'",
  "\\": "\\",
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
};

// libxlu keeps every atom as text, numbers too; `number` marks a number token
type Raw = { text: string; number: boolean } | Raw[];

function cooked(v: Raw): XlValue {
  if (Array.isArray(v)) return v.map(cooked);
  return v.number ? (xlNumber(v.text) ?? v.text) : v.text;
}

// the rules of libxlu_cfg_l.l; their first characters differ, so the first that matches is flex's longest
const LEX =
  /(?<blank>[ \t])|(?<ident>[a-z][._0-9a-z]*)|(?<number>[0-9][0-9a-fx]*)|(?<newline>\n|#[^\n]*\n)|(?<string>"(?:[^"\\\n]|\\[^\n])*"|'(?:[^'\\\n]|\\[^\n])*')|(?<op>\+=|[=,[\];])/y;

type Token =
  | { t: "ident" | "number" | "string"; text: string; line: number }
  | { t: "newline" | "=" | "+=" | "," | "[" | "]" | ";" | "end"; line: number };

/**
 * libxlu's lexer (libxlu_cfg_l.l): flex's longest match over its rules. A character no rule takes
 * is a lexical error, except as the file's very last byte: flex then reaches the end of the file
 * in its error state before reporting, and libxlu reads the file as if it were not there.
 */
function tokens(text: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  const err = (msg: string) => new Error(`xl.cfg line ${line}: ${msg}`);
  const dequote = (q: string, body: string): string => {
    let out = "";
    for (let p = 0; p < body.length; ) {
      const c = body[p++] as string;
      if (c !== "\\") {
        out += c;
        continue;
      }
      const nc = body[p++] as string;
      if (Object.hasOwn(ESCAPES, nc)) out += ESCAPES[nc];
      else if (nc === "x") throw err("invalid digit after backslash hex numerical character escape in quoted string");
      else if (nc >= "0" && nc <= "7") {
        // libxlu reads up to 3 more characters with strtoul(..., 10), needs 2 of them, and writes nothing
        const m = /^[ \t\n\v\f\r]*[+-]?[0-9]+/.exec(`${body}${q}`.slice(p, p + 3));
        if (!m || m[0].length <= 1)
          throw err("invalid digit after backslash octal numerical character escape in quoted string");
        p += m[0].length;
      } else throw err("invalid character after backslash in quoted string");
    }
    return out;
  };
  while (i < text.length) {
    LEX.lastIndex = i;
    const m = LEX.exec(text);
    const g = m?.groups;
    if (!m || !g) {
      if (i === text.length - 1 && (text[i] as string) < "\x80") break;
      const c = text[i] as string;
      const what =
        c === '"' || c === "'" ? "unterminated string" : c === "#" ? "a comment without a newline" : "lexical error";
      throw err(`${what} near ${JSON.stringify(text.slice(i, i + 10))}`);
    }
    i += m[0].length;
    if (g.ident) out.push({ t: "ident", text: g.ident, line });
    else if (g.number) out.push({ t: "number", text: g.number, line });
    else if (g.newline) out.push({ t: "newline", line: line++ });
    else if (g.string) {
      // libxlu measures the token with strlen: it cannot carry a NUL
      if (g.string.includes("\0")) throw err("a NUL in a string");
      out.push({ t: "string", text: dequote(g.string[0] as string, g.string.slice(1, -1)), line });
    } else if (g.op) out.push({ t: g.op as "=", line });
  }
  out.push({ t: "end", line });
  return out;
}

/**
 * Reads an xl.cfg file's text as libxlu does: the same tokens, escapes, statements and errors, and
 * the last assignment of a key wins. Number tokens become numbers as xl reads them (strtol base 0);
 * one strtol would refuse (08, 1a) stays the text libxlu keeps, a string.
 */
export function parseXlConfig(text: string): XlConfig {
  const toks = tokens(text);
  let k = 0;
  const peek = () => toks[k] as Token;
  const err = (msg: string) => new Error(`xl.cfg line ${peek().line}: ${msg}`);
  const found = () => {
    const t = peek();
    return t.t === "end" ? "end of file" : "text" in t ? JSON.stringify(t.text) : JSON.stringify(t.t);
  };
  const nlok = () => {
    while (peek().t === "newline") k++;
  };
  const value = (): Raw => {
    const t = peek();
    if (t.t === "string" || t.t === "number") {
      k++;
      return { text: t.text, number: t.t === "number" };
    }
    if (t.t !== "[") throw err(`expected a value, found ${found()}`);
    k++;
    nlok();
    const list: Raw[] = [];
    if (peek().t === "]") {
      k++;
      return list;
    }
    for (;;) {
      list.push(value());
      nlok();
      const sep = peek().t;
      if (sep === "]") {
        k++;
        return list;
      }
      if (sep !== ",") throw err(`expected , or ] in a list, found ${found()}`);
      k++;
      nlok();
      if (peek().t === "]") {
        k++;
        return list;
      }
    }
  };
  const raw = new Map<string, Raw>();
  for (;;) {
    const t = peek();
    if (t.t === "end") break;
    if (t.t === "newline" || t.t === ";") {
      k++;
      continue;
    }
    if (t.t !== "ident") throw err(`expected a key, found ${found()}`);
    k++;
    const op = peek().t;
    if (op !== "=" && op !== "+=") throw err(`expected = after ${t.text}`);
    k++;
    const v = value();
    const prev = raw.get(t.text);
    if (op === "+=" && prev !== undefined) {
      // += appends to the key's previous value, a string to a string or a list to a list (xlu__cfg_concat_vals)
      if (Array.isArray(prev) !== Array.isArray(v)) throw err(`can't add [list] to "string" or vice versa (${t.text})`);
      raw.set(
        t.text,
        Array.isArray(prev) && Array.isArray(v)
          ? [...prev, ...v]
          : { text: (prev as { text: string }).text + (v as { text: string }).text, number: false },
      );
    } else raw.set(t.text, v);
    const end = peek().t;
    if (end === "newline" || end === ";") k++;
    else if (end !== "end") throw err(`unexpected ${found()} after the value of ${t.text}`);
  }
  const cfg: XlConfig = {};
  for (const [key, v] of raw) cfg[key] = cooked(v);
  return cfg;
}
