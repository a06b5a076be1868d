import { defineConfig } from "vitest/config";

/**
 * Shared by every project's vitest.config.ts. Tests import workspace libs
 * from source (the "@meridian/source" export condition), so no build is
 * needed before testing; and they start real servers and databases, so they
 * run in forked processes with generous timeouts.
 */
export default defineConfig({
  resolve: { conditions: ["@meridian/source"] },
  ssr: { resolve: { conditions: ["@meridian/source"] } },
  test: {
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: process.env.CI ? ["default", "junit"] : ["default"],
    outputFile: { junit: "test-results/junit.xml" },
  },
});
