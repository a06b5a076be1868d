/**
 * Child processes pinned to a core, and what Linux's /proc says about a
 * process: CPU time and resident memory. Off Linux the readings are NaN.
 */
import { type ChildProcess, type SpawnOptions, spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

export const hasTaskset = spawnSync("taskset", ["--version"]).status === 0;

const clockTicksPerSecond =
  Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

/** Runs `command` on one CPU core (taskset), or unpinned where taskset is missing. */
export function spawnOnCore(
  core: number,
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): ChildProcess {
  return hasTaskset
    ? spawn("taskset", ["-c", String(core), command, ...args], options)
    : spawn(command, args, options);
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readProc(`/proc/${pid}/stat`);
  if (stat === undefined) return Number.NaN;
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}

/** Resident set size in bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readProc(`/proc/${pid}/status`) ?? "");
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** This process's children, with their command lines. */
export function children(): { pid: number; commandLine: string }[] {
  const tasks = (() => {
    try {
      return readdirSync("/proc/self/task");
    } catch {
      return [];
    }
  })();
  const pids = tasks.flatMap((task) =>
    (readProc(`/proc/self/task/${task}/children`) ?? "").split(" ").filter(Boolean).map(Number),
  );
  return pids.map((pid) => ({
    pid,
    commandLine: (readProc(`/proc/${pid}/cmdline`) ?? "").split("\0").join(" "),
  }));
}

/** The processes of one group, listed anew at each end of a measurement. */
export type ProcessList = () => readonly number[] | Promise<readonly number[]>;

/**
 * Starts measuring the CPU used by groups of processes; the function it
 * resolves to gives each group's average use since then, in cores (1 = one
 * core busy all the time). A process that started in between counts from
 * zero (all its CPU time is in the window); one that ended is missed.
 */
export async function startCpuMeter(
  groups: Record<string, ProcessList>,
): Promise<() => Promise<Record<string, number>>> {
  const read = async (list: ProcessList) =>
    new Map((await list()).map((pid) => [pid, cpuSeconds(pid)] as const));
  const before = new Map<string, Map<number, number>>();
  for (const [name, list] of Object.entries(groups)) before.set(name, await read(list));
  const started = performance.now();
  return async () => {
    const seconds = (performance.now() - started) / 1000;
    const used: Record<string, number> = {};
    for (const [name, list] of Object.entries(groups)) {
      let total = 0;
      for (const [pid, now] of await read(list)) {
        if (Number.isFinite(now)) total += now - (before.get(name)?.get(pid) ?? 0);
      }
      used[name] = total / seconds;
    }
    return used;
  };
}

/** Ends a child process and waits for it to exit. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

/** What a child process prints on stdout, once it has exited successfully. */
export function outputOf(child: ChildProcess): Promise<string> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0
        ? resolve(stdout)
        : reject(new Error(`${child.spawnargs.join(" ")} exited ${code}: ${stderr}${stdout}`)),
    );
  });
}
