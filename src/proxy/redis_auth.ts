/** Front-end authentication in the Redis modes: AUTH and HELLO against `password`. */
import {
  encodeArray,
  encodeBulk,
  encodeError,
  encodeInteger,
  encodeMap,
  OK_REPLY,
} from "../protocol/resp/encoder.ts";
import { parseLongLong } from "../protocol/resp/bytes.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const DEFAULT_USER = encoder.encode("default");

/** The error a client gets before it authenticates, as redis-server words it. */
export const NOAUTH_ERROR = "NOAUTH Authentication required.";
const WRONGPASS_REPLY = encodeError(
  "WRONGPASS invalid username-password pair or user is disabled.",
);
const NO_PASSWORD_REPLY = encodeError(
  "ERR AUTH <password> called without any password configured for the default user. " +
    "Are you sure your configuration is correct?",
);
// Redis 7's texts, byte for byte (clients and tests match them).
const SYNTAX_ERROR_REPLY = encodeError("ERR syntax error");
const HELLO_NOAUTH_REPLY = encodeError(
  "NOAUTH HELLO must be called with the client already authenticated, otherwise the " +
    "HELLO AUTH <user> <pass> option can be used to authenticate the client and select " +
    "the RESP protocol version at the same time",
);
const NOPROTO_REPLY = encodeError("NOPROTO unsupported protocol version");
const BAD_PROTOVER_REPLY = encodeError("ERR Protocol version is not an integer or out of range");
const BAD_CLIENT_NAME_REPLY = encodeError(
  "ERR Client names cannot contain spaces, newlines or special characters.",
);

/**
 * Commands a client may send before it authenticates: those redis-server 7 flags
 * `no-auth` (AUTH, HELLO, QUIT, RESET). PING is not one of them: with `requirepass` it
 * gets NOAUTH, so a health check must use /healthz.
 */
export function allowedBeforeAuth(name: string): boolean {
  return name === "auth" || name === "hello" || name === "quit" || name === "reset";
}

/** Compares secrets in time that depends on their lengths only, not on where they differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i % (a.length || 1)] ?? 0) ^ b[i];
  return diff === 0;
}

/**
 * Checks a user/password pair: only the "default" user exists. Without a password it is
 * Redis's `nopass` default user, which any password opens.
 */
function _check(password: Uint8Array | null, user: Uint8Array | null, given: Uint8Array): boolean {
  const userOk = user === null || constantTimeEqual(user, DEFAULT_USER);
  const passwordOk = password === null || constantTimeEqual(given, password);
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
  if (argv.length < 2) {
    return { reply: encodeError("ERR wrong number of arguments for 'auth' command"), ok: false };
  }
  if (argv.length > 3) return { reply: SYNTAX_ERROR_REPLY, ok: false };
  // Redis 7: AUTH <password> without requirepass is an error; AUTH default <anything> is OK.
  if (password === null && argv.length === 2) return { reply: NO_PASSWORD_REPLY, ok: false };
  const user = argv.length === 3 ? argv[1] : null;
  const ok = _check(password, user, argv[argv.length - 1]);
  return { reply: ok ? OK_REPLY : WRONGPASS_REPLY, ok };
}

/**
 * Answers HELLO [protover [AUTH user password] [SETNAME name]]: protover 2 or 3 (RESP2 or
 * RESP3; 3 is refused with NOPROTO, as by a Redis 5 server, when `resp3` is false: the
 * backends do not speak it). Returns the reply (a map under RESP3, the flat array under
 * RESP2), whether the client is authenticated afterwards, and its protocol afterwards.
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
    /** The client's protocol now: 2 or 3. */
    protocol: number;
    /** Whether the backends can speak RESP3 (Redis 6 or later, or not known yet). */
    resp3: boolean;
  },
): { reply: Uint8Array; ok: boolean; protocol: number } {
  const unchanged = context.protocol;
  let protocol = unchanged;
  if (argv.length > 1) {
    const version = parseLongLong(argv[1]);
    if (version === null) return { reply: BAD_PROTOVER_REPLY, ok: false, protocol: unchanged };
    // Redis accepts 2 and 3 (and says NOPROTO for the rest, 1 and 4 alike).
    if (version !== 2n && (version !== 3n || !context.resp3)) {
      return { reply: NOPROTO_REPLY, ok: false, protocol: unchanged };
    }
    protocol = Number(version);
  }
  // Options take effect one by one, as in redis-server 7.0: an AUTH that succeeded stays
  // in force even when a later option is refused (`ok` then goes with an error reply).
  let authenticated = context.authenticated;
  for (let i = 2; i < argv.length; i++) {
    const more = argv.length - 1 - i;
    const option = decoder.decode(argv[i]);
    const lower = option.toLowerCase();
    if (lower === "auth" && more >= 2) {
      if (!_check(context.password, argv[i + 1], argv[i + 2])) {
        return { reply: WRONGPASS_REPLY, ok: authenticated, protocol: unchanged };
      }
      authenticated = true;
      i += 2;
    } else if (lower === "setname" && more >= 1) {
      if (argv[i + 1].some((byte) => byte < 0x21 || byte > 0x7e)) {
        return { reply: BAD_CLIENT_NAME_REPLY, ok: authenticated, protocol: unchanged };
      }
      i += 1;
    } else {
      const reply = encodeError(`ERR Syntax error in HELLO option '${option}'`);
      return { reply, ok: authenticated, protocol: unchanged };
    }
  }
  if (!authenticated) return { reply: HELLO_NOAUTH_REPLY, ok: false, protocol: unchanged };
  const fields: Uint8Array[] = [
    encodeBulk("server"),
    encodeBulk("redis"),
    encodeBulk("version"),
    encodeBulk(context.version),
    encodeBulk("proto"),
    encodeInteger(protocol),
    encodeBulk("id"),
    encodeInteger(context.clientId),
    encodeBulk("mode"),
    encodeBulk(context.mode),
    encodeBulk("role"),
    encodeBulk("master"),
    encodeBulk("modules"),
    encodeArray([]),
  ];
  return { reply: encodeMap(fields, protocol === 3), ok: authenticated, protocol };
}
