/**
 * The payment processor behind Charge. Meridian ships a simulated one,
 * deterministic so that demos and tests can ask for each outcome by token
 * (the table is in the payment-service README). A real processor (a card
 * network gateway) would sit behind the same interface.
 */
import { setTimeout as sleep } from "node:timers/promises";

/** What the simulated processor accepts as a payment token. */
export const paymentTokenPattern = /^tok_[a-z0-9_]{1,64}$/;

/** Charges above this many minor units (50,000.00) exceed every simulated card's limit. */
export const cardLimitMinorUnits = 5_000_000n;

export interface ProcessorCharge {
  /**
   * The caller's idempotency key. A real processor is called with it (e.g.
   * as an Idempotency-Key header), so that a charge retried after a lost
   * answer or a timeout collapses into one on the processor's side too:
   * Charge records nothing when its caller gives up mid-call, and the retry
   * must not move the money twice.
   */
  idempotencyKey: string;
  currencyCode: string;
  minorUnits: bigint;
  paymentToken: string;
}

export type ProcessorOutcome = { approved: true } | { approved: false; declineReason: string };

export interface PaymentProcessor {
  /**
   * Asks the processor to move the money. A decline is an outcome, not an
   * error; errors mean "no answer" (cancelled, timed out, unreachable).
   * `signal` aborts the wait when the caller goes away or runs out of time.
   */
  charge(request: ProcessorCharge, signal: AbortSignal): Promise<ProcessorOutcome>;
}

const declinedTokens: ReadonlyMap<string, string> = new Map([
  ["tok_declined", "the card was declined"],
  ["tok_insufficient_funds", "insufficient funds"],
]);

export class SimulatedProcessor implements PaymentProcessor {
  constructor(private readonly options: { slowMs: number }) {}

  async charge(request: ProcessorCharge, signal: AbortSignal): Promise<ProcessorOutcome> {
    if (!paymentTokenPattern.test(request.paymentToken)) {
      // Charge validates tokens first; reaching this is a bug in the caller.
      throw new Error("the simulated processor was given something that is not a payment token");
    }
    if (request.paymentToken === "tok_slow") {
      try {
        await sleep(this.options.slowMs, undefined, { signal });
      } catch (error) {
        throw signal.aborted ? signal.reason : error;
      }
    }
    const declineReason = declinedTokens.get(request.paymentToken);
    if (declineReason !== undefined) return { approved: false, declineReason };
    if (request.minorUnits > cardLimitMinorUnits) {
      return { approved: false, declineReason: "amount exceeds the card's limit" };
    }
    return { approved: true };
  }
}
