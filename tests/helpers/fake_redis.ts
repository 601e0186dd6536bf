/**
 * A scripted RESP backend, for what no real redis-server does (a reply that never comes):
 * each request's argv goes to `answer`, whose bytes are the reply, or null for no reply
 * ever. It counts the connections it saw open and closed, so a test can tell that Aster
 * closed one.
 */
import { RespRequestDecoder } from "../../src/protocol/resp/request_decoder.ts";

/**
 * Decides the reply to one request (argv[0] the command name, as text); null: never. An
 * async iterable is written chunk by chunk as it yields (a reply that arrives in parts);
 * if it throws, the connection is closed there (a backend lost in the middle of a reply).
 */
export type FakeAnswer = (argv: string[]) => Uint8Array | null | AsyncIterable<Uint8Array>;

export interface FakeRedis extends AsyncDisposable {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections the other side closed so far. */
  readonly closed: number;
}

const decoder = new TextDecoder();

/** Starts a fake backend on a free 127.0.0.1 port. */
export function startFakeRedis(answer: FakeAnswer): FakeRedis {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serving: Promise<void>[] = [];
  let accepted = 0;
  let closed = 0;
  const serve = async (conn: Deno.Conn) => {
    const requests = new RespRequestDecoder();
    let buf = new Uint8Array(64 * 1024);
    let end = 0;
    try {
      for (;;) {
        if (end === buf.length) {
          const grown = new Uint8Array(buf.length * 2);
          grown.set(buf);
          buf = grown;
        }
        const n = await conn.read(buf.subarray(end));
        if (n === null) break;
        end += n;
        let at = 0;
        for (;;) {
          const request = requests.decode(buf, at, end);
          if (request === null) break;
          at += request.size;
          const reply = answer(request.argv.map((arg) => decoder.decode(arg)));
          if (reply instanceof Uint8Array) await _writeAll(conn, reply);
          else if (reply !== null) {
            for await (const chunk of reply) await _writeAll(conn, chunk);
          }
        }
        buf.copyWithin(0, at, end);
        end -= at;
      }
    } catch { /* reset or closed by the test */ }
    closed++;
    if (conns.delete(conn)) conn.close();
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        accepted++;
        conns.add(conn);
        serving.push(serve(conn));
      }
    } catch { /* listener closed */ }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get accepted() {
      return accepted;
    },
    get closed() {
      return closed;
    },
    [Symbol.asyncDispose]: async () => {
      listener.close();
      await accepting;
      for (const conn of conns) conn.close();
      conns.clear();
      await Promise.all(serving);
    },
  };
}

async function _writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}
