/**
 * Answers that many streams send as they are, such as a watch event going
 * to every watcher: marked here, so a server path that can encode such an
 * answer once for all its streams (grpc-fast-path.ts) knows it may.
 */
const shared = new WeakSet<object>();

/** Marks `answer` as sent unchanged to many streams. It must not change after. */
export function sendShared<T extends object>(answer: T): T {
  shared.add(answer);
  return answer;
}

export function isShared(answer: unknown): answer is object {
  return typeof answer === "object" && answer !== null && shared.has(answer);
}
