import { loadConfig, serviceConfig } from "@meridian/platform";

export const userServiceConfig = {
  ...serviceConfig({ port: 50051, dataDir: ".data/user-service" }),
};

export type UserServiceConfig = ReturnType<typeof loadUserServiceConfig>;

export function loadUserServiceConfig(env: Record<string, string | undefined> = process.env) {
  return loadConfig(userServiceConfig, env);
}
