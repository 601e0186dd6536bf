/**
 * The libc binding the raw sockets call through: libc's own, or a seeded fault injector
 * around it (tests, or `ASTER_TEST_IO_FAULTS`). One live binding every raw-socket module
 * imports, so swapping it is a swap, not a branch per call.
 */
import { logWarn } from "../../../log.ts";
import { FaultInjector, FAULTS_ENV, parseFaults } from "./faults.ts";
import { c as libc, type Libc } from "./libc.ts";

/** The libc calls this layer makes: libc's own, or a fault injector around them (tests). */
export let c: Libc = libc;

/**
 * Makes this isolate's raw sockets call `binding` from now on (tests; `ASTER_TEST_IO_FAULTS`
 * at start): a swap, not a branch per call. Returns the binding used until now.
 */
export function useLibc(binding: Libc): Libc {
  const previous = c;
  c = binding;
  return previous;
}

let faultsRead = false;

/**
 * Test mode: with `ASTER_TEST_IO_FAULTS` set (see faults.ts), this isolate's raw sockets
 * call libc through a seeded fault injector from now on. Read once per isolate.
 */
export function faultsFromEnv(): void {
  if (faultsRead) return;
  faultsRead = true;
  let text: string | undefined;
  try {
    text = Deno.env.get(FAULTS_ENV);
  } catch {
    return; // no --allow-env: no test mode
  }
  if (!text) return;
  const spec = parseFaults(text);
  if (typeof spec === "string") throw new Error(`${FAULTS_ENV}: ${spec}`);
  const injector = new FaultInjector(c, spec.rates, spec.seed);
  injector.onFirst = (kind) => logWarn(`${FAULTS_ENV}: first ${kind} fault injected`);
  useLibc(injector.libc);
  logWarn(`${FAULTS_ENV}: raw socket calls fail at random (${text})`);
}
