/**
 * meridian.user.v1.UserService over Connect: turns requests into domain calls
 * and results into responses. Validation lives in domain.ts, storage in
 * repository.ts; errors are domain errors that the platform maps to codes.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  AlreadyExistsError,
  decodePageToken,
  type EventFeed,
  encodePageToken,
  InvalidArgumentError,
  pagePosition,
  parsePageSize,
  parseResumeCursor,
  requireAdmin,
  requireSelfOrAdmin,
  type TokenSigner,
  UnauthenticatedError,
  watchResponses,
} from "@meridian/platform";
import {
  type ImportUsersFailure,
  ImportUsersFailureReason,
  ImportUsersFailureSchema,
  UserRole,
  type UserService,
} from "@meridian/proto/meridian/user/v1/user_pb";
import { normalizeEmail, validateNewAccount, validatePatch, validateUserId } from "./domain.js";
import { hashPassword, verifyPassword } from "./passwords.js";
import type { StoredUserEvent, UserRepository } from "./repository.js";

/** ImportUsers counts every failure but details only the first ones, bounding the response. */
export const maxReportedImportFailures = 1000;

/** Anyone may call these: they are how a user gets an account and a token. */
export const publicProcedures = [
  "meridian.user.v1.UserService/CreateUser",
  "meridian.user.v1.UserService/Authenticate",
];

export interface UserServiceDeps {
  users: UserRepository;
  feed: EventFeed<StoredUserEvent>;
  /** Signs access tokens as user-service. */
  signer: TokenSigner;
  accessTokenTtlSeconds: number;
}

export function createUserService({
  users,
  feed,
  signer,
  accessTokenTtlSeconds,
}: UserServiceDeps): ServiceImpl<typeof UserService> {
  return {
    async createUser(req) {
      const { fields, password } = validateNewAccount(req, { passwordRequired: true });
      return {
        user: await users.create(fields, { passwordHash: await hashPassword(password ?? "") }),
      };
    },

    async authenticate(req) {
      const found = await users.findCredentials(normalizeEmail(req.email));
      // Unknown emails are checked against a decoy hash: same time, same answer.
      if (!(await verifyPassword(req.password, found?.passwordHash ?? null)) || !found) {
        throw new UnauthenticatedError("the email or password is wrong");
      }
      const { token, expiresAt } = await signer.sign({
        subject: found.user.id,
        roles: [found.user.role === UserRole.ADMIN ? "admin" : "customer"],
        ttlSeconds: accessTokenTtlSeconds,
      });
      return { accessToken: token, expireTime: timestampFromDate(expiresAt), user: found.user };
    },

    async getUser(req, context) {
      const id = validateUserId(req.id);
      requireSelfOrAdmin(context, id, `read user ${id}`);
      return { user: await users.get(id) };
    },

    async listUsers(req, context) {
      requireAdmin(context, "list users");
      const limit = parsePageSize(req.pageSize);
      const department = req.department.trim();
      const after = decodePageToken(req.pageToken, department);
      // One extra row tells whether there is a next page without a count query.
      const page = await users.list({ department, after, limit: limit + 1 });
      const last = page.length > limit ? page[limit - 1] : undefined;
      return {
        users: page.slice(0, limit),
        nextPageToken: last ? encodePageToken(pagePosition(last), department) : "",
      };
    },

    async updateUser(req, context) {
      const id = validateUserId(req.user?.id ?? "", "user.id");
      requireSelfOrAdmin(context, id, `update user ${id}`);
      const patch = validatePatch(
        {
          email: req.user?.email ?? "",
          name: req.user?.name ?? "",
          department: req.user?.department ?? "",
        },
        req.updateMask?.paths ?? [],
      );
      return { user: await users.update(id, patch) };
    },

    async deleteUser(req, context) {
      const id = validateUserId(req.id);
      requireSelfOrAdmin(context, id, `delete user ${id}`);
      await users.delete(id);
      return {};
    },

    async importUsers(requests, context) {
      requireAdmin(context, "import users");
      const failures: ImportUsersFailure[] = [];
      const seen = new Set<string>();
      let row = 0;
      let created = 0;
      let failed = 0;
      const fail = (
        reason: ImportUsersFailureReason,
        email: string,
        field: string,
        message: string,
      ) => {
        failed++;
        if (failures.length < maxReportedImportFailures) {
          failures.push(create(ImportUsersFailureSchema, { row, email, reason, field, message }));
        }
      };
      for await (const req of requests) {
        try {
          const { fields, password } = validateNewAccount(req, { passwordRequired: false });
          if (seen.has(fields.email)) {
            fail(
              ImportUsersFailureReason.ALREADY_EXISTS,
              req.email,
              "email",
              `"${fields.email}" appears in an earlier row of this import`,
            );
          } else {
            seen.add(fields.email);
            const passwordHash = password === undefined ? undefined : await hashPassword(password);
            await users.create(fields, { passwordHash });
            created++;
          }
        } catch (error) {
          if (error instanceof InvalidArgumentError) {
            const [first] = error.violations;
            fail(ImportUsersFailureReason.INVALID, req.email, first?.field ?? "", error.message);
          } else if (error instanceof AlreadyExistsError) {
            fail(ImportUsersFailureReason.ALREADY_EXISTS, req.email, "email", error.message);
          } else {
            // Not the row's fault (the database is down, say): fail the call.
            // Rows before this one are created; re-importing reports them as ALREADY_EXISTS.
            throw error;
          }
        }
        row++;
      }
      return { createdCount: created, failedCount: failed, failures };
    },

    async *watchUsers(req, context) {
      requireAdmin(context, "watch users");
      const after = parseResumeCursor(req.resumeCursor);
      yield* watchResponses(feed.watch({ after, signal: context.signal }));
    },
  };
}
