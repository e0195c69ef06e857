// The balancer's test inputs: a host and a domain with everyday defaults,
// overridden where a test needs it.
import type { BalanceDomain, BalanceHost } from "../src/balancer/types.ts";

export const host = (name: string, o: Partial<BalanceHost> = {}): BalanceHost => ({
  name,
  ready: true,
  counted: true,
  unschedulable: false,
  inMaintenance: false,
  labels: {},
  cpus: 16,
  memoryMiB: 65536,
  guestTypes: ["pv", "pvh", "hvm"],
  pciAssignable: [],
  ...o,
});

export const dom = (key: string, h: string, o: Partial<BalanceDomain> = {}): BalanceDomain => ({
  key,
  host: h,
  namespace: "ns",
  name: key,
  labels: {},
  memoryMiB: 4096,
  vcpus: 2,
  pciDevices: [],
  type: "pvh",
  hostSelector: {},
  antiAffinity: [],
  cpuCores: 1,
  movable: true,
  ...o,
});
