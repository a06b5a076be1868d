/**
 * Reads docker-compose.yml and the Dockerfile the way Docker would, and
 * turns a compose service into the process a container would run: the
 * image's command, working directory and environment, with the compose
 * file's environment on top. Only what Meridian's files use is supported;
 * anything else fails loudly rather than being misread.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";

export interface ComposeService {
  build?: { context: string; target?: string; args?: Record<string, string> };
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  profiles?: string[];
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
}

/**
 * Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR-default},
 * ${VAR:?error}, ${VAR?error}, and $$ for a literal $.
 */
export function interpolate(text: string, env: Record<string, string | undefined>): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g,
    (match, name, colon, kind, operand) => {
      if (match === "$$") return "$";
      const value = env[name];
      const unset = value === undefined || (colon === ":" && value === "");
      if (kind === "-") return unset ? operand : (value as string);
      if (kind === "?" && unset) throw new Error(`${name}: ${operand || "required"}`);
      return value ?? "";
    },
  );
}

function interpolateAll(value: unknown, env: Record<string, string | undefined>): unknown {
  if (typeof value === "string") return interpolate(value, env);
  if (Array.isArray(value)) return value.map((v) => interpolateAll(v, env));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateAll(v, env)]));
  }
  return value;
}

export function readComposeFile(
  file: string,
  env: Record<string, string | undefined> = {},
): ComposeFile {
  // merge: compose files use YAML 1.1's `<<: *anchor`.
  const raw = parse(readFileSync(file, "utf8"), { merge: true }) as ComposeFile;
  const compose = interpolateAll(raw, env) as ComposeFile;
  for (const [name, service] of Object.entries(compose.services)) {
    if (service.environment !== undefined && Array.isArray(service.environment)) {
      throw new Error(`${name}: write environment as a map, not a list`);
    }
  }
  return compose;
}

/** The compose services in an order that starts each after everything it depends on. */
export function startOrder(compose: ComposeFile, names: readonly string[]): string[] {
  const order: string[] = [];
  const visit = (name: string, path: string[]) => {
    if (order.includes(name)) return;
    if (path.includes(name)) throw new Error(`depends_on cycle: ${[...path, name].join(" → ")}`);
    for (const dependency of Object.keys(compose.services[name]?.depends_on ?? {})) {
      visit(dependency, [...path, name]);
    }
    order.push(name);
  };
  for (const name of names) visit(name, []);
  return order;
}

/** What an image built from one Dockerfile stage runs. */
export interface ImageConfig {
  env: Record<string, string>;
  workdir: string;
  cmd: string[];
  user: string;
}

interface Stage {
  name: string;
  base: string;
  instructions: { keyword: string; value: string }[];
}

/**
 * The image config of `target` (the last stage when undefined): ENV,
 * WORKDIR, CMD and USER, inherited through `FROM <earlier stage>`, with
 * ARGs substituted from their defaults and `buildArgs`.
 */
export function readDockerfile(
  file: string,
  target: string | undefined,
  buildArgs: Record<string, string> = {},
): ImageConfig {
  const lines = readFileSync(file, "utf8")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  const stages: Stage[] = [];
  const globalArgs: Record<string, string> = {};
  for (const line of lines) {
    const [, keyword = "", value = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = keyword.toUpperCase();
    if (upper === "FROM") {
      const [, base = "", name = ""] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(value) ?? [];
      stages.push({ name, base, instructions: [] });
    } else if (stages.length === 0) {
      if (upper !== "ARG") throw new Error(`Dockerfile: ${keyword} before the first FROM`);
      const [name = "", fallback = ""] = value.split("=", 2);
      globalArgs[name] = fallback;
    } else {
      stages.at(-1)?.instructions.push({ keyword: upper, value });
    }
  }
  const stage = target === undefined ? stages.at(-1) : stages.find((s) => s.name === target);
  if (stage === undefined) throw new Error(`Dockerfile has no stage ${target}`);

  const config: ImageConfig = { env: {}, workdir: "/", cmd: [], user: "root" };
  const apply = (s: Stage) => {
    const parent = stages.find((other) => other.name === s.base);
    if (parent !== undefined) apply(parent);
    const args: Record<string, string> = {};
    const substitute = (text: string) =>
      text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args[a ?? b] ?? config.env[a ?? b] ?? "");
    for (const { keyword, value } of s.instructions) {
      if (keyword === "ARG") {
        const [name = "", fallback] = value.split("=", 2);
        args[name] = buildArgs[name] ?? fallback ?? globalArgs[name] ?? "";
      } else if (keyword === "ENV") {
        for (const pair of value.split(/\s+/)) {
          const [name = "", setting = ""] = pair.split("=", 2);
          config.env[name] = substitute(setting);
        }
      } else if (keyword === "WORKDIR") {
        config.workdir = substitute(value);
      } else if (keyword === "USER") {
        config.user = substitute(value);
      } else if (keyword === "CMD") {
        config.cmd = JSON.parse(value) as string[];
      }
    }
  };
  apply(stage);
  return config;
}
