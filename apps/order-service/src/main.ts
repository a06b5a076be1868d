import { runService } from "@meridian/platform";
import { startOrderService } from "./app.js";
import { loadOrderServiceConfig } from "./config.js";

await runService({
  name: "order-service",
  loadConfig: () => loadOrderServiceConfig(),
  logLevel: (config) => config.LOG_LEVEL,
  start: startOrderService,
});
