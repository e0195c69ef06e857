// Builds the operator and node-agent images from their Dockerfiles, with an SBOM for each.
// The Dockerfiles build FROM base images pinned by digest (ARG NODE_IMAGE, ARG DEBIAN_IMAGE);
// where no registry serves them (as on the test machines), the bases are made here from Debian
// packages (debootstrap) and the Node.js of the npm `node` package, and cached by their inputs.
// An image is rebuilt only when its inputs (Dockerfile, sources, lockfile, bases) changed.
import { createHash, randomUUID } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { type ContainerEngine, runTool } from "./containers.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
export const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
const cacheDir = () => join(process.env.KUBEXEN_CACHE ?? join(homedir(), ".cache/kubexen"), "images");

/** The npm that goes into the locally made Node.js base (the npm `node` package carries none). */
const NPM_VERSION = "11.19.1";
/** Bumped when the recipe of the locally made bases changes, so that the cache key changes. */
const BASE_RECIPE = 1;
const INPUTS_LABEL = "io.kubexen.inputs";

export type Component = "operator" | "node-agent";
export const components: Component[] = ["operator", "node-agent"];
/** The workspaces each image's Dockerfile copies (its build inputs besides the lockfile). */
const workspaces: Record<Component, string[]> = {
  operator: ["crds", "sdk", "operator"],
  "node-agent": ["crds", "sdk", "hypervisor", "node-agent"],
};

export interface BuiltImage {
  component: Component;
  /** The reference it is tagged with, e.g. localhost/kubexen/operator:0.1.0. */
  ref: string;
  id: string;
  sbom: string;
  /** False when the image with the same inputs was already there. */
  built: boolean;
}

export interface BuildOptions {
  engine: ContainerEngine;
  /** Registry host (and path) the images are named under; default `localhost`. */
  registry?: string;
  /** `upstream`: the Dockerfiles' pinned bases; `local`: bases made here; `auto`: upstream when pullable. */
  bases?: "auto" | "local" | "upstream";
  only?: Component[];
  /** Progress lines. */
  log?: (line: string) => void;
}

export function imageRef(component: Component, registry = "localhost"): string {
  return `${registry}/kubexen/${component}:${version}`;
}

export async function buildImages(opts: BuildOptions): Promise<BuiltImage[]> {
  const log = opts.log ?? ((l: string) => console.error(l));
  const bases = await chooseBases(opts.engine, opts.bases ?? "auto", log);
  const out: BuiltImage[] = [];
  for (const c of opts.only ?? components) out.push(await buildImage(opts.engine, c, bases, opts.registry, log));
  return out;
}

/** The base images as build arguments: none (the Dockerfiles' defaults) or the locally made ones. */
async function chooseBases(
  engine: ContainerEngine,
  mode: "auto" | "local" | "upstream",
  log: (l: string) => void,
): Promise<Record<string, string>> {
  if (mode === "auto") {
    const pinned = new Set(components.flatMap((c) => Object.values(dockerfileArgs(c))));
    let pullable = true;
    for (const ref of pinned) {
      if (engine.hasImage(ref)) continue;
      log(`images: pulling ${ref}`);
      pullable = await engine.run(["pull", ref]).then(
        () => true,
        () => false,
      );
      if (!pullable) break;
    }
    if (pullable) return {};
    log("images: the pinned base images cannot be pulled; making the bases from Debian packages");
  }
  if (mode === "upstream") return {};
  const debian = await debianBase(engine, log);
  const node = await nodeBase(engine, debian, log);
  return { DEBIAN_IMAGE: debian, NODE_IMAGE: node };
}

/** `ARG NAME=default` lines before the first FROM: the bases, pinned by digest. */
export function dockerfileArgs(c: Component): Record<string, string> {
  const args: Record<string, string> = {};
  for (const line of readFileSync(join(root, c, "Dockerfile"), "utf8").split("\n")) {
    if (/^FROM\s/i.test(line)) break;
    const m = /^ARG\s+(\w+_IMAGE)=(\S+)/.exec(line);
    if (m?.[1] && m[2]) args[m[1]] = m[2];
  }
  return args;
}

/** The Debian mirrors this machine's apt uses (deb822 or one-line sources), for bookworm and its security suite. */
export function debianMirrors(): { debian: string; security: string } {
  const found = { debian: "http://deb.debian.org/debian", security: "http://deb.debian.org/debian-security" };
  const dir = "/etc/apt/sources.list.d";
  const files = [
    "/etc/apt/sources.list",
    ...(existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".sources") || f.endsWith(".list")) : []).map((f) =>
      join(dir, f),
    ),
  ];
  for (const f of files.filter((x) => existsSync(x))) {
    const text = readFileSync(f, "utf8");
    const entries: Array<{ uri: string; suites: string[] }> = [];
    for (const stanza of text.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1]?.split(/\s+/);
      if (uri && suites) entries.push({ uri, suites });
    }
    for (const m of text.matchAll(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/gm))
      if (m[1] && m[2]) entries.push({ uri: m[1], suites: [m[2]] });
    for (const e of entries) {
      if (e.suites.includes("bookworm")) found.debian = e.uri.replace(/\/$/, "");
      if (e.suites.includes("bookworm-security")) found.security = e.uri.replace(/\/$/, "");
    }
  }
  return found;
}

const short = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);

/** Debian bookworm (minbase, slimmed like the official -slim image), from this machine's mirror. */
async function debianBase(engine: ContainerEngine, log: (l: string) => void): Promise<string> {
  const mirrors = debianMirrors();
  const key = short(JSON.stringify({ BASE_RECIPE, suite: "bookworm", variant: "minbase", mirrors }));
  const ref = `localhost/kubexen/debian:bookworm-${key}`;
  if (engine.hasImage(ref)) return ref;
  const dir = cacheDir();
  const tarball = join(dir, `debian-bookworm-${key}.tar.gz`);
  if (!existsSync(tarball)) {
    const rootfs = join(dir, `debian-bookworm-${key}.partial`);
    rmSync(rootfs, { recursive: true, force: true });
    mkdirSync(rootfs, { recursive: true });
    log(`images: debootstrap bookworm from ${mirrors.debian} (a few minutes, once)`);
    let n = 0;
    await runTool("debootstrap", ["--variant=minbase", "bookworm", rootfs, mirrors.debian], {
      onLine: (l) => {
        // One line in 20 of its progress, and every phase change.
        if (/^I: (Retrieving|Validating|Extracting|Unpacking|Configuring)/.test(l) && n++ % 20 !== 0) return;
        log(`  debootstrap: ${l}`);
      },
    });
    // As the official image: no docs (but copyrights), man pages or apt lists; the same mirror.
    writeFileSync(
      join(rootfs, "etc/dpkg/dpkg.cfg.d/slim"),
      "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n",
    );
    rmSync(join(rootfs, "etc/apt/sources.list"), { force: true });
    writeFileSync(
      join(rootfs, "etc/apt/sources.list.d/debian.sources"),
      `Types: deb\nURIs: ${mirrors.debian}\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n` +
        `Types: deb\nURIs: ${mirrors.security}\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
    );
    for (const d of ["var/lib/apt/lists", "var/cache/apt", "usr/share/man", "usr/share/info", "var/log"])
      for (const e of readdirSync(join(rootfs, d), { withFileTypes: true }))
        if (!(d === "var/lib/apt/lists" && e.name === "partial")) rmSync(join(rootfs, d, e.name), { recursive: true });
    await runTool("tar", ["--numeric-owner", "-C", rootfs, "-czf", `${tarball}.partial`, "."]);
    await runTool("mv", [`${tarball}.partial`, tarball]);
    rmSync(rootfs, { recursive: true, force: true });
  }
  log(`images: importing ${ref}`);
  await engine.run(["import", "--change", 'CMD ["bash"]', tarball, ref]);
  return ref;
}

/** The Debian base with Node.js (the binary `npm run` itself uses) and npm, laid out as the official node image. */
async function nodeBase(engine: ContainerEngine, debian: string, log: (l: string) => void): Promise<string> {
  const nodeBin = join(root, "node_modules/node/bin/node");
  if (!existsSync(nodeBin)) throw new Error(`${nodeBin} is missing: run npm ci (or npm run setup) first`);
  const nodeVersion = (await runTool(nodeBin, ["--version"])).trim();
  const key = short(JSON.stringify({ BASE_RECIPE, debian, nodeVersion, NPM_VERSION }));
  const ref = `localhost/kubexen/node:${nodeVersion.replace(/^v/, "")}-bookworm-${key}`;
  if (engine.hasImage(ref)) return ref;
  const ctx = join(cacheDir(), `node-${key}`);
  rmSync(ctx, { recursive: true, force: true });
  mkdirSync(join(ctx, "npm"), { recursive: true });
  copyFileSync(realpathSync(nodeBin), join(ctx, "node"));
  log(`images: npm ${NPM_VERSION} from the npm registry`);
  await runTool("npm", ["pack", `npm@${NPM_VERSION}`, "--pack-destination", ctx, "--silent"]);
  await runTool("tar", ["-xzf", join(ctx, `npm-${NPM_VERSION}.tgz`), "-C", join(ctx, "npm"), "--strip-components=1"]);
  rmSync(join(ctx, `npm-${NPM_VERSION}.tgz`));
  writeFileSync(
    join(ctx, "Containerfile"),
    `FROM ${debian}\nCOPY node /usr/local/bin/node\nCOPY npm /usr/local/lib/node_modules/npm\n` +
      "RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\\n" +
      " && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\\n" +
      " && node --version && npm --version\n" +
      'CMD ["node"]\n',
  );
  log(`images: building ${ref}`);
  await engine.run(buildArgs(engine, ["-t", ref, "-f", join(ctx, "Containerfile"), ctx]), {
    onLine: (l) => log(`  node base: ${l}`),
  });
  rmSync(ctx, { recursive: true, force: true });
  return ref;
}

/** podman's build containers get no network of their own here: they share the host's. */
function buildArgs(engine: ContainerEngine, args: string[]): string[] {
  return ["build", ...(engine.cli === "podman" ? ["--network=host"] : []), ...args];
}

/** Every file the image's Dockerfile may copy, and the Dockerfile, the ignore file and the bases. */
function inputsHash(c: Component, buildArgsUsed: Record<string, string>, baseIds: string[]): string {
  const h = createHash("sha256");
  const add = (rel: string) => {
    h.update(`${rel}\0`);
    h.update(readFileSync(join(root, rel)));
  };
  for (const f of ["package.json", "package-lock.json", ".dockerignore", `${c}/Dockerfile`]) add(f);
  const walk = (dir: string): void => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const rel = join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.isFile()) add(rel);
    }
  };
  for (const w of workspaces[c]) {
    add(`${w}/package.json`);
    walk(`${w}/src`);
  }
  h.update(JSON.stringify({ buildArgsUsed, baseIds }));
  return h.digest("hex");
}

async function buildImage(
  engine: ContainerEngine,
  c: Component,
  bases: Record<string, string>,
  registry: string | undefined,
  log: (l: string) => void,
): Promise<BuiltImage> {
  const ref = imageRef(c, registry);
  const args = Object.fromEntries(Object.entries(dockerfileArgs(c)).map(([k, v]) => [k, bases[k] ?? v]));
  const baseIds = await Promise.all(Object.values(args).map((b) => imageId(engine, b).catch(() => b)));
  const inputs = inputsHash(c, args, baseIds);
  const sbom = join(root, "dist/images", `${c}-${version}.cdx.json`);
  let built = false;
  if ((await labels(engine, ref))[INPUTS_LABEL] !== inputs) {
    log(`images: building ${ref}`);
    const t0 = Date.now();
    await engine.run(
      buildArgs(engine, [
        "-f",
        join(root, c, "Dockerfile"),
        "-t",
        ref,
        ...Object.entries(bases).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]),
        // npm inside the build uses the registry this machine's npm uses.
        "--build-arg",
        `NPM_CONFIG_REGISTRY=${await npmRegistry()}`,
        ...(await caBundle().then((f) => (f ? ["--secret", `id=ca-bundle,src=${f}`] : []))),
        "--label",
        `${INPUTS_LABEL}=${inputs}`,
        "--label",
        `org.opencontainers.image.version=${version}`,
        "--label",
        `org.opencontainers.image.title=kubexen-${c}`,
        root,
      ]),
      { onLine: (l) => log(`  ${c}: ${l}`) },
    );
    log(`images: built ${ref} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    built = true;
  }
  const id = await imageId(engine, ref);
  if (built || !existsSync(sbom) || !readFileSync(sbom, "utf8").includes(id)) {
    mkdirSync(join(root, "dist/images"), { recursive: true });
    writeFileSync(sbom, `${JSON.stringify(await makeSbom(engine, c, ref, id, args), null, 2)}\n`);
    log(`images: SBOM ${relative(root, sbom)}`);
  }
  return { component: c, ref, id, sbom, built };
}

async function npmRegistry(): Promise<string> {
  return (await runTool("npm", ["config", "get", "registry"]).catch(() => "https://registry.npmjs.org/")).trim();
}

/** The CA bundle this machine's Node and npm trust beyond their own (a TLS-inspecting proxy's), if any. */
async function caBundle(): Promise<string | undefined> {
  const fromEnv = process.env.NODE_EXTRA_CA_CERTS;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  const cafile = (await runTool("npm", ["config", "get", "cafile"]).catch(() => "")).trim();
  return cafile && cafile !== "null" && cafile !== "undefined" && existsSync(cafile) ? cafile : undefined;
}

export async function imageId(engine: ContainerEngine, ref: string): Promise<string> {
  return (await engine.run(["image", "inspect", "--format", "{{.Id}}", ref])).trim();
}

async function labels(engine: ContainerEngine, ref: string): Promise<Record<string, string>> {
  const out = await engine.run(["image", "inspect", "--format", "{{json .Config.Labels}}", ref]).catch(() => "null");
  return (JSON.parse(out) as Record<string, string> | null) ?? {};
}

/** Lists, inside the image, every npm package under /app/node_modules (workspace links included). */
const listNpm = `
const fs = require("node:fs"), path = require("node:path");
const seen = new Set(), out = [];
function dir(d) {
  if (!fs.existsSync(d)) return;
  for (const e of fs.readdirSync(d)) {
    if (e.startsWith(".")) continue;
    if (e.startsWith("@")) { dir(path.join(d, e)); continue; }
    const p = fs.realpathSync(path.join(d, e));
    if (seen.has(p) || !fs.existsSync(path.join(p, "package.json"))) continue;
    seen.add(p);
    const j = JSON.parse(fs.readFileSync(path.join(p, "package.json"), "utf8"));
    const lic = typeof j.license === "string" ? j.license : j.license && j.license.type;
    out.push({ name: j.name, version: j.version, license: lic });
    dir(path.join(p, "node_modules"));
  }
}
dir("/app/node_modules");
console.log(JSON.stringify(out));
`;

/** A CycloneDX 1.5 SBOM of what is installed in the image: its Debian packages, Node.js and npm packages. */
async function makeSbom(
  engine: ContainerEngine,
  c: Component,
  ref: string,
  id: string,
  bases: Record<string, string>,
): Promise<object> {
  const inImage = (entrypoint: string, args: string[]) =>
    engine.run(["run", "--rm", "--network=none", "--user=0", "--entrypoint", entrypoint, ref, ...args]);
  // dpkg-query's own ${field} syntax, not a template.
  const format = ["Package", "Version", "Architecture"].map((f) => `\${${f}}`).join("\\t");
  const debs = (await inImage("dpkg-query", ["-W", "-f", `${format}\\n`]))
    .trim()
    .split("\n")
    .map((l) => l.split("\t"))
    .map(([name = "", ver = "", arch = ""]) => ({
      type: "library",
      name,
      version: ver,
      purl: `pkg:deb/debian/${name}@${encodeURIComponent(ver)}?arch=${arch}&distro=debian-12`,
    }));
  const nodeVersion = (await inImage("node", ["--version"])).trim().replace(/^v/, "");
  const npm = (
    JSON.parse(await inImage("node", ["-e", listNpm])) as Array<{ name: string; version: string; license?: string }>
  )
    .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version))
    .map((p) => ({
      type: "library",
      name: p.name,
      version: p.version,
      purl: `pkg:npm/${p.name.replace(/^@/, "%40")}@${p.version}`,
      ...(p.license ? { licenses: [{ license: { name: p.license } }] } : {}),
    }));
  return {
    bomFormat: "CycloneDX",
    specVersion: "1.5",
    serialNumber: `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: {
      timestamp: new Date().toISOString(),
      tools: { components: [{ type: "application", name: "kubexen e2e/src/images.ts" }] },
      component: {
        type: "container",
        name: `kubexen/${c}`,
        version,
        "bom-ref": ref,
        properties: [
          { name: "kubexen:image:ref", value: ref },
          { name: "kubexen:image:id", value: id },
          ...Object.entries(bases).map(([k, v]) => ({ name: `kubexen:base:${k}`, value: v })),
        ],
      },
    },
    components: [
      { type: "platform", name: "nodejs", version: nodeVersion, purl: `pkg:generic/nodejs@${nodeVersion}` },
      ...npm,
      ...debs,
    ],
  };
}
