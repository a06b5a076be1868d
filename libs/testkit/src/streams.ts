/** Helpers for reading server streams in tests without hanging forever. */

/**
 * Pulls from an async iterator until `predicate` has matched `count` items
 * (or throws after `timeoutMs`). The iterator stays open for more reads.
 */
export async function takeUntil<T>(
  iterator: AsyncIterator<T>,
  count: number,
  predicate: (item: T) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<T[]> {
  const taken: T[] = [];
  let matched = 0;
  const deadline = Date.now() + timeoutMs;
  while (matched < count) {
    const remaining = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const next = await Promise.race([
      iterator.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${timeoutMs} ms with ${matched}/${count} items`)),
          Math.max(remaining, 0),
        );
      }),
    ]).finally(() => clearTimeout(timer));
    if (next.done) throw new Error(`stream ended after ${matched}/${count} items`);
    taken.push(next.value);
    if (predicate(next.value)) matched++;
  }
  return taken;
}

/** Reads a stream to its end. */
export async function drain<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}
