/**
 * Drives a decoder over fuzz inputs the way a session does and checks its properties
 * (pure: no Deno.*, no timers).
 *
 * Every input is fed twice: whole (at an offset inside a larger buffer, poison bytes
 * around it) and in random chunks through an append / decode-until-null / compact loop on
 * a growable buffer, with compaction between calls and relocation into fresh buffers.
 * Properties checked:
 * - only ProtocolError is thrown;
 * - every result consumes at least one byte and no more than the buffered input, so the
 *   driving loop ends within (input bytes + chunks) calls; past that bound it is a failure;
 * - a decoder that answered "need more" answers it again for the same bytes;
 * - inputs made of valid frames decode to the values they were encoded from (argv,
 *   fields, sizes), consume the whole input and never throw, even when cut short;
 * - whole and chunked feeding give the same results (runs of discarded bytes merged) and
 *   end the same way (needing more, or a ProtocolError at the same point).
 *
 * The parts: decoder_drivers.ts (one adapter per target), feeding.ts (whole and chunked
 * feeding), input_checks.ts (the properties), outcome_text.ts (what results compare as).
 */
import { driverFor } from "./decoder_drivers.ts";
import type { FuzzCase, FuzzTarget } from "./fuzz_types.ts";
import { generateCase } from "./generators.ts";
import { checkInput, type InputCheck } from "./input_checks.ts";
import { type FuzzDriver, hex } from "./outcome_text.ts";
import { Prng } from "./prng.ts";

/** A property that did not hold for one input, with what it takes to replay it. */
export interface FuzzFailure {
  target: FuzzTarget;
  seed: number;
  /** The input's index: `runFuzz(target, { seed, inputs: 1, first: index })` replays it. */
  index: number;
  /** How the input was made (generator and mutators). */
  label: string;
  /** What went wrong, with the feeding mode ("whole" or "chunked"). */
  reason: string;
  /** Input length in bytes. */
  length: number;
  /** The input bytes in hex, truncated to the first 256 bytes. */
  hex: string;
  /** The chunk sizes of the chunked feeding (first 32). */
  chunks: number[];
}

/** What runFuzz() reports. */
export interface FuzzReport {
  inputs: number;
  /** The first `maxFailures` failures. */
  failures: FuzzFailure[];
  /** Inputs that failed, all of them. */
  failed: number;
}

/** Options of runFuzz(). */
export interface FuzzOptions {
  seed: number;
  inputs: number;
  /**
   * Index of the first input (to replay one input, or continue a run).
   * @default 0
   */
  first?: number;
  /**
   * Stop collecting failures after this many (the run goes on).
   * @default 100
   */
  maxFailures?: number;
  /** Replaces the target's real decoder (to test the harness itself). */
  driver?: FuzzDriver;
  /** Called before each input with its index (progress, stall watchdogs). */
  onInput?: (index: number) => void;
}

/** Checks input `index` of a run with `seed` again, with everything needed to inspect it. */
export function replayInput(
  target: FuzzTarget,
  opts: { seed: number; index: number; driver?: FuzzDriver },
): InputCheck & { input: FuzzCase } {
  const { input, rng } = makeInput(target, opts.seed, opts.index);
  return { input, ...checkInput(opts.driver ?? driverFor(target), input, rng) };
}

/** The input `index` of a run with `seed`, and the PRNG that then picks its feeding. */
export function makeInput(target: FuzzTarget, seed: number, index: number): {
  input: FuzzCase;
  rng: Prng;
} {
  const rng = new Prng(seed, index);
  return { input: generateCase(target, rng), rng };
}

/**
 * Runs `opts.inputs` generated inputs (indexes `first`...) through the target's decoder
 * and returns the inputs checked and the broken properties found, each replayable from
 * its seed and index.
 */
export function runFuzz(target: FuzzTarget, opts: FuzzOptions): FuzzReport {
  const driver = opts.driver ?? driverFor(target);
  const first = opts.first ?? 0;
  const maxFailures = opts.maxFailures ?? 100;
  const failures: FuzzFailure[] = [];
  let failed = 0;
  for (let index = first; index < first + opts.inputs; index++) {
    opts.onInput?.(index);
    const { input, rng } = makeInput(target, opts.seed, index);
    const { reason, chunks } = checkInput(driver, input, rng);
    if (reason === null) continue;
    if (++failed > maxFailures) continue;
    failures.push({
      target,
      seed: opts.seed,
      index,
      label: input.label,
      reason,
      length: input.bytes.length,
      hex: hex(input.bytes.subarray(0, 256)) + (input.bytes.length > 256 ? "..." : ""),
      chunks: chunks.slice(0, 32),
    });
  }
  return { inputs: opts.inputs, failures, failed };
}
