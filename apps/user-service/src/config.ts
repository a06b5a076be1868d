import { env, loadConfig, serviceConfig, signingKeyConfig } from "@meridian/platform";

export const userServiceConfig = {
  ...serviceConfig({ port: 50051, dataDir: ".data/user-service" }),
  ...signingKeyConfig(),
  /** How long an access token from Authenticate is valid. */
  ACCESS_TOKEN_TTL_SECONDS: env.int(3600, { min: 60, max: 7 * 24 * 3600 }),
  /**
   * The first admin: created (or promoted) at start-up when both are set and
   * no admin with this email exists yet. The demo and tests set them.
   */
  BOOTSTRAP_ADMIN_EMAIL: env.optionalString(),
  BOOTSTRAP_ADMIN_PASSWORD: env.optionalString(),
};

export type UserServiceConfig = ReturnType<typeof loadUserServiceConfig>;

export function loadUserServiceConfig(env: Record<string, string | undefined> = process.env) {
  return loadConfig(userServiceConfig, env);
}
