import { runService } from "@meridian/platform";
import { startUserService } from "./app.js";
import { userServiceConfig } from "./config.js";

await runService({
  name: "user-service",
  config: userServiceConfig,
  logLevel: (config) => config.LOG_LEVEL,
  start: startUserService,
});
