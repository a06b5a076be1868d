export {
  bearer,
  createTestClient,
  createTestTransport,
  type Protocol,
  protocols,
} from "./clients.js";
export {
  type OpenTestDatabase,
  openTestDatabase,
  rowHeldBeforeOutboxLock,
  type TestDatabase,
  type TestDatabaseKind,
  testDatabaseKinds,
  testPostgresUrl,
} from "./databases.js";
export { callError } from "./errors.js";
export { startTestIssuer, type TestIssuer } from "./issuers.js";
export { type CapturedLogs, captureLogs } from "./logs.js";
export {
  type CreatedMigration,
  createMigration,
  type MigrationOptions,
  PostgresUnreachableError,
  pendingMigrationSql,
} from "./migrations.js";
export {
  type CorpusOptions,
  callCorpus,
  grpcFrame,
  type RawAnswer,
  type RawCall,
  rawGrpcClient,
} from "./raw-grpc.js";
export { drain, takeUntil } from "./streams.js";
