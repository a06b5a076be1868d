/**
 * Profiles a Meridian service for as long as it runs: preload it with
 * `NODE_OPTIONS=--import=<path to this file>` and the process writes a V8 CPU
 * profile (open it in Chrome DevTools or speedscope) when it exits. Only
 * processes running a service's dist/main.js, or given a CPU_PROFILE_NAME,
 * are profiled, so tools that pass NODE_OPTIONS on (npm, Nx) are left alone.
 *
 * `npm run bench` passes SERVICE_NODE_OPTIONS to the services and unary
 * servers it starts; see apps/bench/README.md. `--cpu-prof` itself is not allowed in
 * NODE_OPTIONS, which is why this file exists.
 *
 * CPU_PROFILE_DIR: where profiles go (default: the working directory).
 * CPU_PROFILE_INTERVAL_US: sampling interval (default 200 µs).
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import path from "node:path";

const main = process.argv[1] ?? "";
const service = process.env.CPU_PROFILE_NAME ?? /([^/\\]+)[/\\]dist[/\\]main\.js$/.exec(main)?.[1];
if (service !== undefined) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", {
    interval: Number(process.env.CPU_PROFILE_INTERVAL_US ?? 200),
  });
  session.post("Profiler.start");
  // The inspector answers a session in the same thread synchronously, so
  // this completes inside the exit handler.
  process.on("exit", () => {
    session.post("Profiler.stop", (error, result) => {
      if (error) return;
      const file = path.resolve(
        process.env.CPU_PROFILE_DIR ?? ".",
        `${service}-${process.pid}.cpuprofile`,
      );
      writeFileSync(file, JSON.stringify(result.profile));
    });
  });
}
