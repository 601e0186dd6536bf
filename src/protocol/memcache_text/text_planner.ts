/** memcache text's planner: frames a client's requests and plans each one (answer, forward, split). */
import {
  MemcacheTextDecoder,
  type MemcacheTextError,
  type MemcacheTextRequest,
  type RetrievalHead,
  withoutNoreply,
} from "./text_request.ts";
import { replyKind, textLine } from "./text_reply.ts";
import { KIND_NUMBER, MN_REQUEST, QUIET_META } from "./text_node_framer.ts";
import { FixedReplySink, QuietMetaSink, RetrievalSplit, serverErrorLine } from "./text_sinks.ts";
import type { Plan, RequestPlanner } from "../protocol.ts";
import { groupKeys, SplitMerge, type SplitPart } from "../split_merge.ts";
import type { Routing } from "../../proxy/routing.ts";
import type { ClusterMetrics } from "../../metrics/worker_metrics.ts";
import { VERSION } from "../../version.ts";
import { copies } from "../../io/copy_slab.ts";
import { ascii } from "../bytes.ts";

const EMPTY = new Uint8Array(0);
const NO_BACKEND = "no backend available: every node is ejected";
const VERSION_REPLY = textLine(`VERSION aster-${VERSION}`);
const MN_REPLY = textLine("MN");

/**
 * What every memcache session of a data plane shares (text and binary). A reload replaces
 * its fields in place.
 */
export interface MemcacheSettings {
  routing: Routing;
  /** Largest value accepted, bytes. */
  maxValueBytes: number;
  /** Longest get/gets/gat/gats line accepted, bytes (`max_multiget_line`). */
  maxRetrievalLineBytes: number;
}

/** What a memcache planner knows of its client. */
export interface MemcacheClient {
  readonly id: number;
  readonly metrics: ClusterMetrics;
}

/** Plans the requests of one client in `memcache` mode. */
export class MemcacheTextPlanner implements RequestPlanner {
  readonly #client: MemcacheClient;
  readonly #settings: MemcacheSettings;
  readonly #decoder: MemcacheTextDecoder;

  constructor(client: MemcacheClient, settings: MemcacheSettings) {
    this.#client = client;
    this.#settings = settings;
    this.#decoder = new MemcacheTextDecoder({
      maxValueBytes: settings.maxValueBytes,
      maxRetrievalLineBytes: settings.maxRetrievalLineBytes,
    });
  }

  get neededBytes(): number {
    return this.#decoder.neededBytes;
  }

  next(buf: Uint8Array, start: number, end: number, plan: Plan): number {
    const result = this.#decoder.decode(buf, start, end);
    if (result === null) return -1;
    if (result.kind === "skip") plan.skip();
    else if (result.kind === "error") {
      this.#client.metrics.error("refused");
      if (result.close === true) plan.local(EMPTY, true);
      else if (result.staleKey !== undefined) {
        this.#dropStale(result, result.noreply ? EMPTY : textLine(result.error), plan);
      } else if (result.noreply) plan.skip();
      else plan.local(textLine(result.error));
    } else this.#plan(result, buf.subarray(start, start + result.size), plan);
    return result.size;
  }

  #plan(req: MemcacheTextRequest, raw: Uint8Array, plan: Plan): void {
    this.#client.metrics.command(req.command);
    switch (req.command) {
      case "quit":
        plan.local(EMPTY, true);
        return;
      case "version":
        plan.local(VERSION_REPLY);
        return;
      case "mn":
        plan.local(MN_REPLY);
        return;
      case "get":
      case "gets":
      case "gat":
      case "gats":
        this.#retrieve(req, raw, plan);
        return;
    }
    if (req.keys.length === 0) {
      // Admin commands (flush_all, stats, verbosity...) would act on one server only.
      if (req.noreply) plan.skip();
      else plan.local(serverErrorLine(`command '${req.command}' is not supported by aster`));
      return;
    }
    const group = this.#settings.routing.groupOf(_routingKey(req));
    const kind = KIND_NUMBER[replyKind(req.command)];
    if (group < 0) {
      // Nothing for text noreply, SERVER_ERROR otherwise.
      plan.local(req.noreply && kind === KIND_NUMBER.line ? EMPTY : serverErrorLine(NO_BACKEND));
      return;
    }
    if (!req.noreply) {
      plan.forward(group, raw, false, kind);
      return;
    }
    if (kind === KIND_NUMBER.meta) {
      // Quiet meta mode: only memcached knows which replies it hides (a created item's HD
      // shows, an incremented one's does not), so the request goes as it is, with an `mn`
      // after it that always answers: whatever comes before the MN is the client's.
      const bytes = new Uint8Array(raw.length + MN_REQUEST.length);
      bytes.set(raw);
      bytes.set(MN_REQUEST, raw.length);
      plan.forward(group, bytes, false, QUIET_META);
      plan.sink = new QuietMetaSink();
      return;
    }
    // Text noreply: memcached sends nothing, even for most errors. The request goes without
    // its noreply (so every request has a reply to match) and the reply is dropped.
    plan.forward(group, withoutNoreply(raw, req), false, kind);
    plan.sink = new FixedReplySink();
  }

  /**
   * A store refused as too large: the key's old value is deleted on its server, as
   * memcached does, and the client gets the refusal once the delete is done (so its next
   * request of that key, on the same backend connection, finds nothing).
   */
  #dropStale(refused: MemcacheTextError, answer: Uint8Array, plan: Plan): void {
    const key = refused.staleKey!;
    const base64 = refused.staleKeyBase64 === true;
    const group = this.#settings.routing.groupOf(base64 ? _decodedBase64(key) : key);
    if (group < 0) {
      plan.local(answer);
      return;
    }
    const request = base64 ? _line("md ", key, " b") : _line("delete ", key, "");
    plan.forward(group, request, false, KIND_NUMBER[base64 ? "meta" : "line"]);
    plan.sink = new FixedReplySink(answer);
  }

  /** get/gets/gat/gats: whole when every key is on one server, else split and merged. */
  #retrieve(req: MemcacheTextRequest, raw: Uint8Array, plan: Plan): void {
    const routing = this.#settings.routing;
    const kind = KIND_NUMBER.retrieval;
    const touch = req.exptime !== null;
    if (req.keys.length === 1 && (!touch || raw.length <= MAX_GAT_LINE)) {
      // The usual get: no per-key arrays or callbacks.
      const group = routing.groupOf(req.keys[0]);
      if (group < 0) plan.local(serverErrorLine(NO_BACKEND));
      else plan.forward(group, raw, false, kind);
      return;
    }
    const groups = req.keys.map((key) => routing.groupOf(key));
    if (groups.some((group) => group < 0)) {
      plan.local(serverErrorLine(NO_BACKEND));
      return;
    }
    if (groups.every((group) => group === groups[0]) && (!touch || raw.length <= MAX_GAT_LINE)) {
      plan.forward(groups[0], raw, false, kind);
      return;
    }
    const keyIndexes = req.keys.map((_, index) => index);
    let parts = groupKeys(keyIndexes, groups);
    const head: RetrievalHead = touch ? { command: req.command, exptime: _shortExptime(req) } : req;
    if (touch) parts = _shortGatParts(head, req.keys, parts);
    const keys = req.keys.map((key) => copies.copy(key));
    const strategy = new RetrievalSplit({ head, keys: req.keys, copies: keys }, parts.length);
    plan.split(new SplitMerge(parts, strategy), false, kind);
  }
}

/**
 * Longest gat/gats line sent to memcached: it closes a connection holding more than 1 KB
 * without a "\n" unless the line is a get/gets (proto_text.c), which would fail every
 * request sharing that backend connection.
 */
const MAX_GAT_LINE = 1024;

/** Splits the parts of a gat/gats so that each one's line fits in MAX_GAT_LINE. */
function _shortGatParts(
  head: RetrievalHead,
  keys: readonly Uint8Array[],
  parts: SplitPart[],
): SplitPart[] {
  // "gats <exptime>" and "\r\n"; a key adds a space and its bytes (at most 251).
  const base = 4 + 1 + head.exptime!.length + 2;
  const out: SplitPart[] = [];
  for (const part of parts) {
    let chunk: number[] = [];
    let size = base;
    for (const index of part.keyIndexes) {
      const add = 1 + keys[index].length;
      if (chunk.length > 0 && size + add > MAX_GAT_LINE) {
        out.push({ group: part.group, keyIndexes: chunk });
        chunk = [];
        size = base;
      }
      chunk.push(index);
      size += add;
    }
    out.push({ group: part.group, keyIndexes: chunk });
  }
  return out;
}

/** A gat's exptime without the leading zeros memcached ignores, so a line stays short. */
function _shortExptime(req: MemcacheTextRequest): Uint8Array {
  const exptime = req.exptime!;
  if (exptime.length <= 20) return exptime;
  try {
    return new TextEncoder().encode(String(BigInt(new TextDecoder().decode(exptime))));
  } catch {
    return exptime;
  }
}

/** The bytes a key is hashed by: meta requests with the "b" flag carry base64 keys. */
function _routingKey(req: MemcacheTextRequest): Uint8Array {
  const key = req.keys[0];
  return req.base64Key ? _decodedBase64(key) : key;
}

/** `<head><key><tail>\r\n`, a request of its own (the key is a view of the client's buffer). */
function _line(head: string, key: Uint8Array, tail: string): Uint8Array {
  const headBytes = ascii(head);
  const tailBytes = ascii(`${tail}\r\n`);
  const line = new Uint8Array(headBytes.length + key.length + tailBytes.length);
  line.set(headBytes);
  line.set(key, headBytes.length);
  line.set(tailBytes, headBytes.length + key.length);
  return line;
}

/** A base64 key's bytes (memcached hashes those), or the text as it is when it does not decode. */
function _decodedBase64(key: Uint8Array): Uint8Array {
  try {
    return Uint8Array.from(atob(new TextDecoder().decode(key)), (c) => c.charCodeAt(0));
  } catch {
    return key;
  }
}
