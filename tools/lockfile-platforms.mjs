#!/usr/bin/env node
/**
 * Adds every platform's optional binary package to package-lock.json.
 *
 * Biome, Buf and Nx ship one binary package per platform as optional
 * dependencies. npm records them all in the lockfile when it can read them
 * from the registry; the registry mirror on Meridian's build machines serves
 * only the Linux ones, so `npm install` there leaves the rest out, and
 * `npm ci` (Docker builds, GitHub Actions, every fork) then refuses the
 * lockfile ("Missing: @biomejs/cli-darwin-arm64@ from lock file").
 *
 * This writes the missing entries with the platform npm needs to skip them
 * elsewhere (os, cpu, libc, read from the package's name, as each of these
 * projects names them). They carry no integrity hash, because this machine
 * cannot fetch the packages to compute one: npm installs such an entry
 * without checking a hash. Run `npm install` on a machine that reaches the
 * public registry to have npm add the hashes.
 *
 *   node tools/lockfile-platforms.mjs    after any npm install that changed the lockfile
 */
import { readFileSync, writeFileSync } from "node:fs";

const lockFile = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(lockFile, "utf8"));
const cpus = { x64: "x64", arm64: "arm64", aarch64: "arm64", arm: "arm", armv7: "arm" };
const oses = new Set(["darwin", "linux", "win32", "freebsd", "android"]);

/** "@nx/nx-linux-x64-musl" → { os: "linux", cpu: "x64", libc: "musl" } */
function platformOf(name) {
  const parts = name.split("/").pop().split("-");
  const at = parts.findIndex((part) => oses.has(part));
  const os = parts[at];
  const cpu = cpus[parts[at + 1]];
  if (at < 0 || cpu === undefined) return undefined;
  const abi = parts[at + 2];
  return { os, cpu, libc: abi === "musl" ? "musl" : "glibc" };
}

let added = 0;
for (const [key, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const path = `node_modules/${name}`;
    if (lock.packages[path] !== undefined) continue;
    const platform = platformOf(name);
    if (platform === undefined) {
      console.error(
        `${key} has optional dependency ${name}, which names no platform I know; add it by hand`,
      );
      process.exitCode = 1;
      continue;
    }
    // A sibling this machine could install shows whether the family declares a libc and its engines.
    const sibling = Object.entries(lock.packages).find(
      ([other, e]) => other !== path && e.integrity && entry.optionalDependencies[other.slice(13)],
    )?.[1];
    lock.packages[path] = {
      version,
      cpu: [platform.cpu],
      ...(entry.dev || entry.devOptional ? { dev: true } : {}),
      ...(platform.os === "linux" && sibling?.libc ? { libc: [platform.libc] } : {}),
      ...(sibling?.license ? { license: sibling.license } : {}),
      optional: true,
      os: [platform.os],
      ...(sibling?.engines ? { engines: sibling.engines } : {}),
    };
    added++;
  }
}

const [root, ...rest] = Object.keys(lock.packages);
lock.packages = Object.fromEntries(
  [root, ...rest.sort((a, b) => a.localeCompare(b, "en"))].map((k) => [k, lock.packages[k]]),
);
writeFileSync(lockFile, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: added ${added} platform package(s)`);
