/** The decode loop shared by front ends whose decoders also report refusals and skips. */
import type { Session } from "./session.ts";

/** A decoder result: a frame to handle, a refusal to answer, or bytes to drop. */
export interface Framed {
  kind: string;
  /** Bytes the result took in the input. */
  size: number;
}

/** What a front end does with each result (skips are dropped here). */
export interface FrameHandlers<R extends Framed> {
  decode(buf: Uint8Array, start: number, end: number): R | null;
  /** A refused request whose framing holds: answer it and go on. */
  refused(result: R): void;
  /** A complete request and its raw bytes (a view, valid during the call). */
  request(result: R, raw: Uint8Array): void;
}

/**
 * Handles every complete result in `buf[start, end)` until the session stops taking
 * requests; returns the bytes consumed.
 */
export function feedFrames<R extends Framed>(
  session: Session,
  input: { buf: Uint8Array; start: number; end: number; handlers: FrameHandlers<R> },
): number {
  const { buf, start, end, handlers } = input;
  let at = start;
  while (!session.draining) {
    const result = handlers.decode(buf, at, end);
    if (result === null) break;
    const raw = buf.subarray(at, at + result.size);
    at += result.size;
    if (result.kind === "skip") continue;
    if (result.kind === "error") {
      session.metrics.error("refused");
      handlers.refused(result);
      continue;
    }
    handlers.request(result, raw);
  }
  return at - start;
}
