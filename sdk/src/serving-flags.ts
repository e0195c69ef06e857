// Command-line flags for a manager's metrics and health servers, shared by
// every program built on the SDK so that each reads them the same way.
import { isIP } from "node:net";
import type { ManagerOptions } from "./manager.ts";

export type ServingOptions = Pick<
  ManagerOptions,
  "metricsPort" | "metricsHost" | "metricsTls" | "healthPort" | "healthHost"
>;

/** Option specs for node:util parseArgs. */
export const servingFlags = {
  "metrics-port": { type: "string" },
  "metrics-address": { type: "string" },
  "metrics-cert": { type: "string" },
  "metrics-key": { type: "string" },
  "health-port": { type: "string" },
  "health-address": { type: "string" },
} as const;

type Values = Partial<Record<keyof typeof servingFlags, string>>;

function port(v: string | undefined, flag: string): number | undefined {
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || n > 65535) throw new Error(`--${flag} must be a port number (0 to 65535), got ${v}`);
  return n;
}

function address(v: string | undefined, flag: string): string | undefined {
  if (v === undefined || v === "") return undefined;
  if (!isIP(v)) throw new Error(`--${flag} must be an IP address to listen on, got ${v}`);
  return v;
}

/** The serving options these flags ask for; throws an Error naming the flag that is wrong. */
export function parseServingFlags(
  v: Values,
  defaults: { metricsPort?: number; healthPort?: number } = {},
): ServingOptions {
  const cert = v["metrics-cert"];
  const key = v["metrics-key"];
  if (!!cert !== !!key) throw new Error("--metrics-cert and --metrics-key go together");
  return {
    metricsPort: port(v["metrics-port"], "metrics-port") ?? defaults.metricsPort,
    metricsHost: address(v["metrics-address"], "metrics-address"),
    metricsTls: cert && key ? { certFile: cert, keyFile: key } : undefined,
    healthPort: port(v["health-port"], "health-port") ?? defaults.healthPort,
    healthHost: address(v["health-address"], "health-address"),
  };
}
