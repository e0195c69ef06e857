// The container engine the image builds and the image tests use: Docker when a Docker daemon
// answers (a developer's laptop), otherwise podman run as root, whose API service is started
// here for testcontainers and stopped with the process that started it.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Supervised, startSupervised } from "./supervised.ts";
import { until } from "./wait.ts";

export interface ContainerEngine {
  /** The command line tool: `docker` or `podman`. */
  readonly cli: "docker" | "podman";
  /** Runs the tool; rejects with its output when it fails. `onLine` sees each output line as it comes. */
  run(args: string[], opts?: { input?: string; onLine?: (line: string) => void }): Promise<string>;
  /** Whether an image is present locally. */
  hasImage(ref: string): boolean;
}

export function engineCli(): ContainerEngine {
  const cli = dockerAnswers() ? "docker" : "podman";
  return {
    cli,
    run: (args, opts) => runTool(cli, args, opts),
    hasImage: (ref) => spawnSync(cli, ["image", "inspect", ref], { stdio: "ignore" }).status === 0,
  };
}

function dockerAnswers(): boolean {
  if (spawnSync("docker", ["--version"], { stdio: "ignore" }).status !== 0) return false;
  // A docker CLI without a daemon behind it (or podman's docker wrapper) is no Docker.
  const r = spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], { encoding: "utf8", timeout: 15_000 });
  return r.status === 0 && !/podman/i.test(r.stdout + r.stderr);
}

export function runTool(
  cmd: string,
  args: string[],
  opts: { input?: string; onLine?: (line: string) => void; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? process.env });
    let out = "";
    let err = "";
    let partial = "";
    const lines = (chunk: string) => {
      if (!opts.onLine) return;
      partial += chunk;
      const parts = partial.split(/\r?\n/);
      partial = parts.pop() ?? "";
      for (const l of parts) opts.onLine(l);
    };
    child.stdout.setEncoding("utf8").on("data", (c: string) => {
      out += c;
      lines(c);
    });
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      err += c;
      lines(c);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(" ")} exited ${code}:\n${(err || out).slice(-4000)}`));
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** What testcontainers needs to reach the engine; `stop` ends what `useContainerApi` started. */
export interface ContainerApi {
  readonly engine: ContainerEngine;
  stop(): Promise<void>;
}

/**
 * Makes testcontainers reach a container engine. With DOCKER_HOST set or a Docker daemon
 * answering, nothing changes (a laptop with Docker runs the tests as they are). Otherwise this
 * process starts its own podman API service on a socket of its own (tests of other processes may
 * run at the same time) and points testcontainers at it: Ryuk off (its image cannot be pulled
 * here; the tests remove their containers) and ports on 127.0.0.1, not podman's bridge address.
 */
export async function useContainerApi(): Promise<ContainerApi> {
  const engine = engineCli();
  if (process.env.DOCKER_HOST || engine.cli === "docker") return { engine, stop: async () => {} };
  mkdirSync("/run/podman", { recursive: true });
  const socket = `/run/podman/kubexen-${process.pid}.sock`;
  const service: Supervised = startSupervised(
    "podman-api",
    "podman",
    ["system", "service", "--time=0", `unix://${socket}`],
    { logFile: join(tmpdir(), `kubexen-podman-api-${process.pid}.log`) },
  );
  await until("the podman API service", () => existsSync(socket) && ping(socket), 30_000, 100);
  process.env.DOCKER_HOST = `unix://${socket}`;
  process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
  process.env.TESTCONTAINERS_HOST_OVERRIDE = "127.0.0.1";
  return {
    engine,
    stop: async () => {
      await service.stop(5000);
      delete process.env.DOCKER_HOST;
    },
  };
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: "/_ping", timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}
