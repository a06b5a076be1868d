/**
 * Load on one server from core 1: h2load (nghttp2-client) when installed,
 * else node-client.ts in a process of its own. Both report the same thing:
 * requests per second over the measured time, and the latency of every
 * request in it (h2load's --log-file).
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { outputOf, spawnOnCore } from "../processes.js";
import { type LatencySummary, summarize } from "../report.js";

export interface LoadSpec {
  url: string;
  /** gRPC: POST `body` over HTTP/2; REST: GET over HTTP/1.1. */
  protocol: "grpc" | "rest";
  headers: Record<string, string>;
  body?: Buffer;
  connections: number;
  /** Requests in flight on each connection (HTTP/2 streams; 1 for HTTP/1.1, which has no multiplexing). */
  streamsPerConnection: number;
  warmupSeconds: number;
  seconds: number;
}

export interface LoadResult {
  requestsPerSecond: number;
  latency: LatencySummary;
  /** Requests that did not end in HTTP 200 (and, for the Node client, grpc-status 0). */
  failed: number;
}

export type LoadClient = "h2load" | "node";

export const h2loadVersion = (() => {
  const run = spawnSync("h2load", ["--version"], { encoding: "utf8" });
  return run.status === 0 ? run.stdout.trim() : undefined;
})();

export const loadCore = 1;

export function runLoad(spec: LoadSpec, client: LoadClient): Promise<LoadResult> {
  return client === "h2load" ? runH2load(spec) : runNodeClient(spec);
}

async function runH2load(spec: LoadSpec): Promise<LoadResult> {
  const dir = await mkdtemp(path.join(tmpdir(), "meridian-bench-"));
  try {
    const log = path.join(dir, "requests.log");
    const args = [
      ...["-c", String(spec.connections), "-m", String(spec.streamsPerConnection), "-t", "1"],
      ...["-D", `${Math.round(spec.seconds * 1000)}ms`],
      `--warm-up-time=${Math.round(spec.warmupSeconds * 1000)}ms`,
      `--log-file=${log}`,
      ...Object.entries(spec.headers).flatMap(([name, value]) => ["-H", `${name}: ${value}`]),
    ];
    if (spec.body !== undefined) {
      const body = path.join(dir, "body");
      await writeFile(body, spec.body);
      args.push(`--data=${body}`);
    }
    if (spec.protocol === "rest") args.push("--h1");
    const output = await outputOf(spawnOnCore(loadCore, "h2load", [...args, spec.url]));
    const requestsPerSecond = Number(/finished in [\d.]+s, ([\d.]+) req\/s/.exec(output)?.[1]);
    const counts = /(\d+) failed, (\d+) errored, (\d+) timeout/.exec(output);
    if (counts === null || !Number.isFinite(requestsPerSecond)) {
      throw new Error(`h2load said something unexpected:\n${output}`);
    }
    let failed = Number(counts[1]) + Number(counts[2]) + Number(counts[3]);
    // One line per request: start (µs since epoch), HTTP status, duration (µs).
    // Requests in flight when the warm-up ends are logged with status 0.
    const lines = (await readFile(log, "utf8")).split("\n").filter(Boolean);
    const latencies = new Float64Array(lines.length);
    lines.forEach((line, i) => {
      const [, status, micros] = line.split("\t");
      if (status !== "200" && status !== "0") failed++;
      latencies[i] = Number(micros) / 1000;
    });
    return { requestsPerSecond, latency: summarize(latencies), failed };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function runNodeClient(spec: LoadSpec): Promise<LoadResult> {
  const script = path.join(import.meta.dirname, "node-client.ts");
  const serialized = JSON.stringify({ ...spec, body: spec.body?.toString("base64") });
  const child = spawnOnCore(loadCore, process.execPath, ["--import", "tsx", script, serialized]);
  return JSON.parse(await outputOf(child)) as LoadResult;
}
