export { AGENT_VERSION, type AgentOptions, NodeAgent } from "./agent.ts";
export { certificateDecision, HostCertificate, renewAtMs } from "./certificate.ts";
export { configFor, migratability } from "./domains.ts";
export { Fencer, LinuxWatchdog, SimWatchdog, type Watchdog, XenWatchdog } from "./fence.ts";
export { hostStatus, nextReportMs, reportChanged } from "./host.ts";
export { type MintOptions, mintHost } from "./mint.ts";
export { type Action, type Plan, plan, restartBackoffMs, wantsRunning } from "./plan.ts";
export { pruneUsed, UsedTokens } from "./used-tokens.ts";
