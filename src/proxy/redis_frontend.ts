/** The Redis side of a session in `redis` mode: frames requests, answers or routes each one. */
import type { NodePool } from "../backend/node_pool.ts";
import { encodeCommand, encodeError, OK_REPLY } from "../protocol/resp/encoder.ts";
import { RespRequestDecoder } from "../protocol/resp/request_decoder.ts";
import {
  commandKeyIndexes,
  type CommandSpec,
  isBlockingRequest,
  lookupCommand,
} from "../protocol/resp/commands.ts";
import { describeBytes } from "../protocol/resp/bytes.ts";
import { localReply } from "./redis_local.ts";
import type { Router } from "./ring_router.ts";
import { groupKeysByNode, partArgv, SplitCollector } from "./redis_split.ts";
import type { RequestHandler, Session } from "./session.ts";

/** What every Redis session of a worker shares: the router and the backend connections. */
export interface RedisBackend {
  router: Router;
  pool: NodePool;
}

/** Handles the requests of one client session in sharded Redis mode. */
export class RedisFrontend implements RequestHandler {
  readonly #session: Session;
  readonly #backend: RedisBackend;
  readonly #decoder = new RespRequestDecoder();

  constructor(session: Session, backend: RedisBackend) {
    this.#session = session;
    this.#backend = backend;
  }

  feed(buf: Uint8Array, start: number, end: number): number {
    let at = start;
    while (!this.#session.draining) {
      const request = this.#decoder.decode(buf, at, end);
      if (request === null) break;
      const raw = buf.subarray(at, at + request.size);
      at += request.size;
      if (request.argv.length === 0) continue;
      this.#handle(request.argv, request.inline ? null : raw);
    }
    return at - start;
  }

  errorReply(message: string): Uint8Array {
    return encodeError(`ERR ${message}`);
  }

  /** Answers, refuses or routes one request; `raw` is its RESP encoding (null when inline). */
  #handle(argv: Uint8Array[], raw: Uint8Array | null): void {
    const session = this.#session;
    const spec = lookupCommand(argv[0]);
    if (spec === undefined) {
      session.answer(session.reserve(), _unknownCommand(argv));
      return;
    }
    if (spec.arity > 0 ? argv.length !== spec.arity : argv.length < -spec.arity) {
      session.answer(
        session.reserve(),
        encodeError(`ERR wrong number of arguments for '${spec.name}' command`),
      );
      return;
    }
    switch (spec.kind) {
      case "local":
        if (spec.name === "quit") session.answerAndClose(OK_REPLY);
        else session.answer(session.reserve(), localReply(spec, argv));
        return;
      case "unsupported":
        session.answer(
          session.reserve(),
          encodeError(`ERR command '${spec.name}' is not supported by aster: ${spec.reason}`),
        );
        return;
      default:
        this.#route(spec, argv, raw);
    }
  }

  #route(spec: CommandSpec, argv: Uint8Array[], raw: Uint8Array | null): void {
    const session = this.#session;
    const slot = session.reserve();
    if (isBlockingRequest(spec, argv)) {
      session.answer(slot, encodeError(`ERR blocking '${spec.name}' is not supported by aster`));
      return;
    }
    const keyIndexes = commandKeyIndexes(spec, argv);
    if (typeof keyIndexes === "string") {
      session.answer(slot, encodeError(keyIndexes));
      return;
    }
    const { router, pool } = this.#backend;
    const nodes = keyIndexes.map((index) => router.pick(argv[index]));
    const first = nodes.length > 0 ? nodes[0] : router.pick(argv[0]);
    if (first < 0 || nodes.some((node) => node < 0)) {
      session.answer(slot, encodeError("ERR no backend available: every node is ejected"));
      return;
    }
    const sameNode = nodes.every((node) => node === first);
    if (sameNode) {
      pool.connFor(first, session.id).send(raw ?? encodeCommand(argv), slot);
      return;
    }
    if (spec.kind !== "multi" || spec.split === undefined) {
      session.answer(
        slot,
        encodeError(`ERR keys of '${spec.name}' map to different servers; use a hash tag`),
      );
      return;
    }
    const parts = groupKeysByNode(keyIndexes, nodes);
    const collector = new SplitCollector(
      { kind: spec.split, parts, keyCount: keyIndexes.length, firstKeyIndex: keyIndexes[0] },
      { answerMerged: (reply) => session.answer(slot, reply) },
    );
    for (let i = 0; i < parts.length; i++) {
      const bytes = encodeCommand(partArgv(spec.split, argv, parts[i]));
      pool.connFor(parts[i].node, session.id).send(bytes, collector.sinkFor(i));
    }
  }
}

/** Redis's own wording for an unknown command. */
function _unknownCommand(argv: readonly Uint8Array[]): Uint8Array {
  const name = describeBytes(argv[0], 0, argv[0].length, 128);
  const args = argv.slice(1, 4).map((arg) => `'${describeBytes(arg, 0, arg.length, 64)}' `)
    .join("");
  return encodeError(`ERR unknown command '${name}', with args beginning with: ${args}`);
}
