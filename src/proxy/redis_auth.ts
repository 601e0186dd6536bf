/** Front-end authentication in the Redis modes: AUTH and HELLO against `password`. */
import {
  encodeArray,
  encodeBulk,
  encodeError,
  encodeInteger,
  OK_REPLY,
} from "../protocol/resp/encoder.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const DEFAULT_USER = encoder.encode("default");

/** The error a client gets before it authenticates. */
export const NOAUTH_REPLY = encodeError("NOAUTH Authentication required.");
const WRONGPASS_REPLY = encodeError(
  "WRONGPASS invalid username-password pair or user is disabled.",
);
const NO_PASSWORD_REPLY = encodeError(
  "ERR AUTH <password> called without any password configured for the default user. " +
    "Are you sure your configuration is correct?",
);

/** Commands a client may send before it authenticates. */
export function allowedBeforeAuth(name: string): boolean {
  return name === "auth" || name === "hello" || name === "ping" || name === "quit";
}

/** Compares secrets in time that depends on their lengths only, not on where they differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i % (a.length || 1)] ?? 0) ^ b[i];
  return diff === 0;
}

/** Checks a user/password pair: only the "default" user exists. */
function _check(password: Uint8Array, user: Uint8Array | null, given: Uint8Array): boolean {
  const userOk = user === null || constantTimeEqual(user, DEFAULT_USER);
  const passwordOk = constantTimeEqual(given, password);
  return userOk && passwordOk;
}

/**
 * Answers AUTH [user] password. `password` is the configured one (null: none set).
 * Returns the reply and whether the client is now authenticated.
 */
export function answerAuth(
  argv: readonly Uint8Array[],
  password: Uint8Array | null,
): { reply: Uint8Array; ok: boolean } {
  if (argv.length !== 2 && argv.length !== 3) {
    return { reply: encodeError("ERR wrong number of arguments for 'auth' command"), ok: false };
  }
  if (password === null) return { reply: NO_PASSWORD_REPLY, ok: false };
  const user = argv.length === 3 ? argv[1] : null;
  const ok = _check(password, user, argv[argv.length - 1]);
  return { reply: ok ? OK_REPLY : WRONGPASS_REPLY, ok };
}

/**
 * Answers HELLO [protover [AUTH user password] [SETNAME name]]: RESP2 only. Returns the
 * reply and whether it authenticated the client.
 */
export function answerHello(
  argv: readonly Uint8Array[],
  context: {
    password: Uint8Array | null;
    authenticated: boolean;
    clientId: number;
    /** The backends' lowest Redis version (see INFO's redis_version). */
    version: string;
    /** "cluster" in redis_cluster mode, else "standalone". */
    mode: string;
  },
): { reply: Uint8Array; ok: boolean } {
  let authenticated = context.authenticated;
  if (argv.length > 1) {
    const version = decoder.decode(argv[1]);
    if (version !== "2") {
      if (!/^\d+$/.test(version)) {
        return {
          reply: encodeError("ERR Protocol version is not an integer or out of range"),
          ok: false,
        };
      }
      return {
        reply: encodeError("NOPROTO sorry, this protocol version is not supported"),
        ok: false,
      };
    }
  }
  for (let i = 2; i < argv.length; i++) {
    const option = decoder.decode(argv[i]).toLowerCase();
    if (option === "auth" && i + 2 < argv.length) {
      if (context.password === null) return { reply: NO_PASSWORD_REPLY, ok: false };
      if (!_check(context.password, argv[i + 1], argv[i + 2])) {
        return { reply: WRONGPASS_REPLY, ok: false };
      }
      authenticated = true;
      i += 2;
    } else if (option === "setname" && i + 1 < argv.length) {
      i += 1;
    } else {
      return { reply: encodeError(`ERR Syntax error in HELLO option '${option}'`), ok: false };
    }
  }
  if (!authenticated) return { reply: NOAUTH_REPLY, ok: false };
  const fields: Uint8Array[] = [
    encodeBulk("server"),
    encodeBulk("redis"),
    encodeBulk("version"),
    encodeBulk(context.version),
    encodeBulk("proto"),
    encodeInteger(2),
    encodeBulk("id"),
    encodeInteger(context.clientId),
    encodeBulk("mode"),
    encodeBulk(context.mode),
    encodeBulk("role"),
    encodeBulk("master"),
    encodeBulk("modules"),
    encodeArray([]),
  ];
  return { reply: encodeArray(fields), ok: authenticated };
}
