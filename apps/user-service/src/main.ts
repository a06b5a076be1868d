import { runService } from "@meridian/platform";
import { startUserService } from "./app.js";
import { loadUserServiceConfig } from "./config.js";

await runService({
  name: "user-service",
  loadConfig: () => loadUserServiceConfig(),
  logLevel: (config) => config.LOG_LEVEL,
  start: startUserService,
});
