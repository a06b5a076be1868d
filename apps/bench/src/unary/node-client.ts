/**
 * The load generator when h2load is not installed: `node-client.ts <LoadSpec
 * as JSON, body in base64>`. Keeps connections × streamsPerConnection
 * requests in flight for the warm-up and then the measured seconds, and
 * prints a LoadResult as JSON. Slower than h2load: at high rates it measures
 * itself too (see README).
 */
import http from "node:http";
import http2 from "node:http2";
import { summarize } from "../report.js";
import type { LoadResult, LoadSpec } from "./load.js";

const spec = JSON.parse(process.argv[2] ?? "{}") as LoadSpec & { body?: string };
const url = new URL(spec.url);
const body = Buffer.from(spec.body ?? "", "base64");

const begin = performance.now();
const measureFrom = begin + spec.warmupSeconds * 1000;
const measureUntil = measureFrom + spec.seconds * 1000;
const latencies: number[] = [];
let failed = 0;

/** Resolves true when the call succeeded. */
type Call = () => Promise<boolean>;

function grpcCall(session: http2.ClientHttp2Session): Call {
  const headers = { ":method": "POST", ":path": url.pathname, ...spec.headers };
  return () =>
    new Promise((resolve) => {
      const stream = session.request(headers);
      let status: string | undefined;
      stream.once("response", (response) => {
        // A call that fails at once ends with its status in the headers (trailers-only).
        status = response["grpc-status"] as string | undefined;
      });
      stream.once("trailers", (trailers) => {
        status = trailers["grpc-status"] as string | undefined;
      });
      stream.resume();
      stream.once("close", () => resolve(status === "0"));
      stream.once("error", () => resolve(false));
      stream.end(body);
    });
}

function restCall(agent: http.Agent): Call {
  return () =>
    new Promise((resolve) => {
      const request = http.get(url, { agent, headers: spec.headers }, (response) => {
        response.resume();
        response.once("end", () => resolve(response.statusCode === 200));
      });
      request.once("error", () => resolve(false));
    });
}

async function loop(call: Call) {
  for (;;) {
    const started = performance.now();
    if (started >= measureUntil) return;
    const ok = await call();
    const ended = performance.now();
    if (started < measureFrom || ended > measureUntil) continue;
    latencies.push(ended - started);
    if (!ok) failed++;
  }
}

const loops: Promise<void>[] = [];
const sessions: http2.ClientHttp2Session[] = [];
const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections });
for (let c = 0; c < spec.connections; c++) {
  let call = restCall(agent);
  if (spec.protocol === "grpc") {
    const session = http2.connect(url.origin);
    sessions.push(session);
    call = grpcCall(session);
  }
  for (let s = 0; s < spec.streamsPerConnection; s++) loops.push(loop(call));
}
await Promise.all(loops);
for (const session of sessions) session.close();
agent.destroy();
const result: LoadResult = {
  requestsPerSecond: latencies.length / spec.seconds,
  latency: summarize(latencies),
  failed,
};
console.log(JSON.stringify(result));
