/**
 * The two ways the system benches drive calls. A closed loop keeps a fixed
 * number of calls in flight (each worker waits for its answer): that finds
 * the most the system can do. An open loop starts calls at a fixed rate
 * whatever the answers do, as independent users would, and times each call
 * from when it was due, so a stall shows up in the latencies instead of
 * quietly lowering the rate (coordinated omission).
 */
import { type LatencySummary, summarize } from "./report.js";

export interface LoopResult {
  /** Successful calls per second. */
  throughput: number;
  latency: LatencySummary;
  errors: number;
  /** The first error, to say what went wrong. */
  firstError?: string;
}

type Call = () => Promise<unknown>;

class Tally {
  readonly latencies: number[] = [];
  errors = 0;
  firstError: string | undefined;

  async time(call: Call, from = performance.now()): Promise<void> {
    try {
      await call();
      this.latencies.push(performance.now() - from);
    } catch (error) {
      this.errors++;
      this.firstError ??= error instanceof Error ? error.message : String(error);
    }
  }

  result(seconds: number): LoopResult {
    return {
      throughput: this.latencies.length / seconds,
      latency: summarize(this.latencies),
      errors: this.errors,
      ...(this.firstError === undefined ? {} : { firstError: this.firstError }),
    };
  }
}

export async function closedLoop(call: Call, concurrency: number, seconds: number) {
  const tally = new Tally();
  const started = performance.now();
  const until = started + seconds * 1000;
  const worker = async () => {
    while (performance.now() < until) await tally.time(call);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return tally.result((performance.now() - started) / 1000);
}

export async function openLoop(call: Call, perSecond: number, seconds: number) {
  const tally = new Tally();
  const inFlight = new Set<Promise<void>>();
  let mostInFlight = 0;
  const started = performance.now();
  const total = Math.round(perSecond * seconds);
  for (let sent = 0; sent < total; ) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * perSecond) + 1);
    for (; sent < due; sent++) {
      const pending = tally.time(call, started + (sent * 1000) / perSecond);
      inFlight.add(pending);
      void pending.finally(() => inFlight.delete(pending));
    }
    mostInFlight = Math.max(mostInFlight, inFlight.size);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(inFlight);
  return { ...tally.result((performance.now() - started) / 1000), mostInFlight };
}
