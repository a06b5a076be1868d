/**
 * Section 1: one unary call served five ways (modes.ts), each server alone
 * on core 0, load from core 1. Per row: a probe with a real client, then
 * throughput and latency under load, then latency one call at a time.
 */
import path from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { generateSigningJwk, importSigningKey, TokenSigner } from "@meridian/platform";
import { GetUserRequestSchema } from "@meridian/proto/meridian/user/v1/user_pb";
import { spawnOnCore, startCpuMeter, stopProcess } from "../processes.js";
import { formatNumber, type LatencySummary, ms, percent, printTable, ratio } from "../report.js";
import { sampleUser } from "../samples.js";
import { type LoadClient, type LoadSpec, runLoad } from "./load.js";
import {
  getUserPath,
  grpcFrame,
  signingKeyVariable,
  type UnaryMode,
  type UnaryModeName,
  unaryModes,
} from "./modes.js";
import { probe } from "./probe.js";

export interface UnarySettings {
  quick: boolean;
  client: LoadClient;
  /** The rows to run, of unaryModes (ratios need grpc-js and the ceiling among them). */
  rows: readonly UnaryModeName[];
}

export interface UnaryRow {
  mode: UnaryModeName;
  label: string;
  requestsPerSecond: number;
  loaded: LatencySummary;
  unloaded: LatencySummary;
  /** Cores the server process used under load (1 = its core was always busy). */
  serverCores: number;
  vsGrpcJs: number;
  ofCeiling: number;
}

/** In flight under load: 32 streams on one HTTP/2 connection, or 32 HTTP/1.1 connections. */
const loadedConcurrency = 32;

export async function benchUnary(settings: UnarySettings) {
  const { quick } = settings;
  const timing = quick
    ? { warmup: 1, loaded: 2, unloadedWarmup: 0.3, unloaded: 1 }
    : { warmup: 3, loaded: 10, unloadedWarmup: 0.5, unloaded: 4 };
  const signingKey = JSON.stringify(await generateSigningJwk());
  const { token } = await new TokenSigner("user-service", await importSigningKey(signingKey)).sign({
    subject: sampleUser.id,
    roles: ["customer"],
    ttlSeconds: 3600,
  });
  const grpcRequest = grpcFrame(
    toBinary(GetUserRequestSchema, create(GetUserRequestSchema, { id: sampleUser.id })),
  );

  const measured: Omit<UnaryRow, "vsGrpcJs" | "ofCeiling">[] = [];
  for (const name of settings.rows) {
    const mode: UnaryMode = unaryModes[name];
    process.stdout.write(`  ${mode.label}…`);
    const server = await startServerProcess(name, signingKey);
    try {
      await probe(mode, server.baseUrl, token);
      const spec = (concurrency: number, warmupSeconds: number, seconds: number): LoadSpec =>
        mode.protocol === "grpc"
          ? {
              url: `${server.baseUrl}${getUserPath}`,
              protocol: "grpc",
              headers: {
                "content-type": "application/grpc",
                te: "trailers",
                authorization: `Bearer ${token}`,
                // Meridian's services always send a deadline (deadlines.ts).
                "grpc-timeout": "5S",
              },
              body: grpcRequest,
              connections: 1,
              streamsPerConnection: concurrency,
              warmupSeconds,
              seconds,
            }
          : {
              url: `${server.baseUrl}/users/${sampleUser.id}`,
              protocol: "rest",
              headers: { authorization: `Bearer ${token}`, accept: "application/json" },
              connections: concurrency,
              streamsPerConnection: 1,
              warmupSeconds,
              seconds,
            };
      const cpu = await startCpuMeter({ server: () => [server.pid] });
      const loaded = await runLoad(
        spec(loadedConcurrency, timing.warmup, timing.loaded),
        settings.client,
      );
      const serverCores = (await cpu()).server ?? Number.NaN;
      const unloaded = await runLoad(
        spec(1, timing.unloadedWarmup, timing.unloaded),
        settings.client,
      );
      const failed = loaded.failed + unloaded.failed;
      if (failed > 0) throw new Error(`${mode.label}: ${failed} requests failed under load`);
      measured.push({
        mode: name,
        label: mode.label,
        requestsPerSecond: loaded.requestsPerSecond,
        loaded: loaded.latency,
        unloaded: unloaded.latency,
        serverCores,
      });
      process.stdout.write(` ${formatNumber(loaded.requestsPerSecond)} req/s\n`);
    } finally {
      await server.stop();
    }
  }

  const throughputOf = (mode: UnaryModeName) =>
    measured.find((row) => row.mode === mode)?.requestsPerSecond ?? Number.NaN;
  const rows: UnaryRow[] = measured.map((row) => ({
    ...row,
    vsGrpcJs: row.requestsPerSecond / throughputOf("grpc-js"),
    ofCeiling: row.requestsPerSecond / throughputOf("ceiling"),
  }));
  printTable(
    "1. Unary: UserService.GetUser, in-memory handler (server on core 0, load on core 1)",
    [
      "server",
      "req/s",
      "p50 ms",
      "p99 ms",
      "unloaded p50",
      "unloaded p99",
      "vs grpc-js",
      "of ceiling",
      "server CPU",
    ],
    rows.map((row) => [
      row.label,
      formatNumber(row.requestsPerSecond),
      ms(row.loaded.p50Ms),
      ms(row.loaded.p99Ms),
      ms(row.unloaded.p50Ms),
      ms(row.unloaded.p99Ms),
      ratio(row.vsGrpcJs),
      percent(row.ofCeiling),
      percent(row.serverCores),
    ]),
    [
      `Loaded: ${loadedConcurrency} requests in flight (gRPC: 1 HTTP/2 connection × ${loadedConcurrency} streams; REST: ${loadedConcurrency} HTTP/1.1 keep-alive connections),`,
      `${timing.loaded} s after ${timing.warmup} s of warm-up. Unloaded: one request at a time, ${timing.unloaded} s. Latencies in ms.`,
      `Every request carries a bearer token and grpc-timeout; only Meridian verifies the token. Client: ${settings.client}.`,
      "The ceiling is gRPC's on node:http2: HTTP/1.1 costs Node less per request than HTTP/2, so REST can pass it.",
    ],
  );
  return rows;
}

async function startServerProcess(mode: UnaryModeName, signingKey: string) {
  const script = path.join(import.meta.dirname, "server-process.ts");
  const child = spawnOnCore(
    0,
    process.execPath,
    // Meridian's libraries as the services run them: compiled (dist/, built by
    // the bench's Nx target), not from source through tsx's transform.
    ["--import", "tsx", script, mode],
    {
      env: {
        ...process.env,
        [signingKeyVariable]: signingKey,
        // For profiling a row under load (tools/cpu-profile.mjs); unset in normal runs.
        ...(process.env.SERVICE_NODE_OPTIONS
          ? { NODE_OPTIONS: process.env.SERVICE_NODE_OPTIONS, CPU_PROFILE_NAME: `unary-${mode}` }
          : {}),
      },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let output = "";
    child.stdout?.on("data", (chunk) => {
      output += chunk;
      const line = output.split("\n").find((candidate) => candidate.startsWith("{"));
      if (line) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once("exit", (code) =>
      reject(new Error(`the ${mode} server exited (${code}) before serving`)),
    );
  });
  return {
    pid: child.pid ?? 0,
    baseUrl: `http://127.0.0.1:${port}`,
    stop: () => stopProcess(child),
  };
}
