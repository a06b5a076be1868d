/**
 * npm run bench: Meridian's performance, measured in one run and printed as
 * tables; the results also go to results/latest.json.
 *
 *   npm run bench                       every section (a few minutes)
 *   npm run bench -- --quick            short runs: a smoke test
 *   npm run bench -- --only unary       one section: unary, e2e, watch or payload (repeatable)
 *   npm run bench -- --watchers 5000    watch streams in the fan-out section
 *   npm run bench -- --client node      load from the Node client even when h2load is installed
 *   npm run bench -- --only unary --rows meridian,grpc-js   some unary rows only
 */
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { benchEndToEnd } from "./e2e.js";
import { benchPayload } from "./payload.js";
import { hasTaskset } from "./processes.js";
import { shownPath } from "./report.js";
import { h2loadVersion, type LoadClient } from "./unary/load.js";
import { unaryModes } from "./unary/modes.js";
import { benchUnary } from "./unary/run.js";
import { benchWatch } from "./watch.js";

const sections = ["unary", "e2e", "watch", "payload"] as const;
type Section = (typeof sections)[number];

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string", multiple: true },
    watchers: { type: "string" },
    "watch-rate": { type: "string" },
    client: { type: "string" },
    rows: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (flags.help) {
  console.log(
    "usage: npm run bench [-- --quick] [-- --only unary|e2e|watch|payload] [-- --watchers N]\n" +
      "  --quick             short runs (a smoke test, numbers are rough)\n" +
      "  --only <section>    run only this section; repeatable\n" +
      "  --watchers <n>      concurrent WatchOrders streams (default 5000; 500 with --quick)\n" +
      "  --watch-rate <n>    orders placed per second while they watch (default 1)\n" +
      "  --client node       load the unary servers from the Node client instead of h2load\n" +
      `  --rows <a,b>        unary rows to run (${Object.keys(unaryModes).join(", ")})`,
  );
  process.exit(0);
}
const fail = (message: string): never => {
  console.error(message);
  process.exit(2);
};
const only = (flags.only ?? []).map((name) =>
  (sections as readonly string[]).includes(name)
    ? (name as Section)
    : fail(`--only ${name}: not a section (${sections.join(", ")})`),
);
const selected = only.length > 0 ? only : sections;
const positiveInt = (flag: string, raw: string | undefined, fallback: number) => {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  return Number.isInteger(value) && value > 0
    ? value
    : fail(`--${flag} must be a positive integer`);
};
const positiveNumber = (flag: string, raw: string | undefined, fallback: number) => {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  return value > 0 && Number.isFinite(value) ? value : fail(`--${flag} must be a positive number`);
};
const quick = flags.quick ?? false;
const client: LoadClient =
  flags.client === undefined
    ? h2loadVersion
      ? "h2load"
      : "node"
    : flags.client === "node" || flags.client === "h2load"
      ? flags.client
      : fail("--client must be h2load or node");
if (client === "h2load" && !h2loadVersion)
  fail("h2load is not installed: apt-get install nghttp2-client");
const rows = (flags.rows?.split(",") ?? Object.keys(unaryModes)).map((name) =>
  name in unaryModes
    ? (name as keyof typeof unaryModes)
    : fail(`--rows: ${name} is not a unary row (${Object.keys(unaryModes).join(", ")})`),
);
// Checked now, not when the watch section comes round.
const watchSettings = {
  quick,
  watchers: positiveInt("watchers", flags.watchers, quick ? 500 : 5000),
  ordersPerSecond: positiveNumber("watch-rate", flags["watch-rate"], 1),
};

const machine = {
  cpu: os.cpus()[0]?.model ?? "unknown",
  cores: os.cpus().length,
  memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
  node: process.version,
  loadGenerator: client === "h2load" ? (h2loadVersion ?? "h2load") : "node client (node-client.ts)",
  pinning: hasTaskset ? "taskset: servers on core 0, load on core 1" : "none (no taskset)",
  // Other work on the machine moves every number.
  loadAverage: os
    .loadavg()
    .map((load) => load.toFixed(2))
    .join(" "),
};
console.log(`Meridian bench${quick ? " (--quick: short runs, rough numbers)" : ""}`);
for (const [name, value] of Object.entries(machine)) console.log(`  ${name.padEnd(14)}${value}`);

const run: Record<Section, () => unknown> = {
  unary: () => benchUnary({ quick, client, rows }),
  e2e: () => benchEndToEnd({ quick }),
  watch: () => benchWatch(watchSettings),
  payload: () => benchPayload({ quick }),
};

const started = performance.now();
const results: Partial<Record<Section, unknown>> = {};
const failed: Section[] = [];
for (const section of selected) {
  console.log(`\n── ${section} ──`);
  try {
    results[section] = await run[section]();
  } catch (error) {
    // One section failing (no PostgreSQL, say) should not cost the others.
    console.error(`\n${section} failed: ${error instanceof Error ? error.stack : String(error)}`);
    results[section] = { error: String(error) };
    failed.push(section);
  }
}
const seconds = (performance.now() - started) / 1000;

const file = path.join(import.meta.dirname, "..", "results", "latest.json");
await mkdir(path.dirname(file), { recursive: true });
await writeFile(
  file,
  `${JSON.stringify(
    { date: new Date().toISOString(), quick, sections: selected, seconds, machine, results },
    (_key, value) => (typeof value === "bigint" ? value.toString() : value),
    2,
  )}\n`,
);
console.log(`\nDone in ${seconds.toFixed(0)} s. Results: ${shownPath(file)}`);
if (failed.length > 0) {
  console.error(`Failed: ${failed.join(", ")} (see above).`);
  process.exitCode = 1;
}
