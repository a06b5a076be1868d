export {
  type Authenticator,
  createAuthenticate,
  isAdmin,
  principalKey,
  principalOf,
  requireAdmin,
  requireSelfOrAdmin,
  requireServiceOrAdmin,
  scopeToCaller,
} from "./auth.js";
export { encodeBinary } from "./binary-encoding.js";
export { bindCallContext, currentCall, handlerContextKey, runInCall } from "./call-context.js";
export { observeCalls, peerAddressKey, statusName } from "./call-observer.js";
export {
  ConfigError,
  type ConfigVariable,
  describeConfig,
  type EnvField,
  env,
  loadConfig,
} from "./config.js";
export {
  type Database,
  type DatabaseOptions,
  type OutboxTransaction,
  openDatabase,
  writeToOutbox,
} from "./database.js";
export { isDatabaseUnavailable, isUniqueViolation, sqlState } from "./database-errors.js";
export { type DeadlinePolicy, normalizeDeadline, propagateDeadline } from "./deadlines.js";
export {
  AlreadyExistsError,
  callEndedCodes,
  DomainError,
  FailedPreconditionError,
  type FieldViolation,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  toConnectError,
  UnauthenticatedError,
} from "./errors.js";
export {
  EventFeed,
  type EventFeedOptions,
  type EventSource,
  type FeedEvent,
  type OutboxTable,
  outboxSource,
  parseResumeCursor,
  type WatchItem,
  type WatchOptions,
  watchResponses,
} from "./event-feed.js";
export { createHealthService, type HealthOptions } from "./health.js";
export { createHealthProbe, type ServingStatusName } from "./health-probe.js";
export { checkId, isUuid, validateId } from "./ids.js";
export { runService, runUntilSignalled, type ServiceMain } from "./lifecycle.js";
export {
  createLogger,
  flushLogs,
  type Logger,
  type LogLevel,
  logDestination,
  logLevels,
} from "./logger.js";
export {
  attachCredentials,
  type CallerIdentity,
  type ConnectNeighbour,
  createNeighbourTransport,
  type NeighbourOptions,
  neighbourConnection,
  neighbourInterceptors,
} from "./neighbours.js";
export {
  afterPagePosition,
  decodePageToken,
  encodePageToken,
  pagePosition,
  parsePageSize,
} from "./paging.js";
export {
  type RunningServer,
  type ServerOptions,
  type ServerPath,
  serverPaths,
  startServer,
} from "./server.js";
export {
  neighbourUrl,
  resolveSigningKey,
  serviceConfig,
  signingKeyConfig,
} from "./service-config.js";
export { type RunningService, type ServeOptions, ServiceRuntime } from "./service-runtime.js";
export { isShared, sendShared } from "./shared-answers.js";
export {
  ensureSigningKeyFile,
  generateSigningJwk,
  importSigningKey,
  jwksDocument,
  jwksPath,
  loadOrCreateDevelopmentKey,
  type Principal,
  type Role,
  ServiceIdentity,
  type SigningKey,
  type TokenClaims,
  TokenSigner,
  TokenVerifier,
  type TokenVerifierOptions,
  type TrustedIssuer,
  tokenAudience,
} from "./tokens.js";
