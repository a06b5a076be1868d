import { ConfigError, createLogger, runUntilSignalled } from "@meridian/platform";
import { startUserService } from "./app.js";
import { loadUserServiceConfig } from "./config.js";

let config: ReturnType<typeof loadUserServiceConfig>;
try {
  config = loadUserServiceConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`user-service: ${error.message}`);
  process.exit(2);
}
const logger = createLogger("user-service", config.LOG_LEVEL);
const service = await startUserService(config, logger);
runUntilSignalled(service.stop, logger);
