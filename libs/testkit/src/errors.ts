import { ConnectError } from "@connectrpc/connect";

/** The ConnectError a call fails with; throws if the call succeeds instead. */
export async function callError(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to fail, but it succeeded");
}
