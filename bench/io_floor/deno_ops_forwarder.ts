/**
 * The least a Redis proxy does, on Deno's socket ops (`conn.read`/`conn.write`, as Aster
 * does): whole requests from every client go to one redis-server, batched into one write
 * per event-loop turn; each reply goes back to its client. No parsing beyond framing, no
 * routing, no errors of its own: it measures what Deno's socket calls cost per request,
 * the floor under any proxy written on them (`bench/compare.ts`, section `io`:
 * `bench/sections/io.ts`).
 *
 * Usage: deno run --allow-net bench/io_floor/deno_ops_forwarder.ts LISTEN_PORT BACKEND_PORT
 * Runs until killed.
 */
import { BackendInput, ClientInput, forwarderPorts, OutputQueue } from "./request_pipe.ts";

const HOST = "127.0.0.1";
const [listenPort, backendPort] = forwarderPorts(Deno.args, "deno_ops_forwarder.ts");

/** A client connection and the replies it is owed that a write has not taken yet. */
interface Client {
  conn: Deno.TcpConn;
  out: OutputQueue;
  writing: boolean;
  /** It left (or a write to it failed): its replies are dropped. */
  closed: boolean;
}

const backend = await Deno.connect({ hostname: HOST, port: backendPort });
backend.setNoDelay(true);
const toBackend = new OutputQueue();
const fromBackend = new BackendInput<Client>();
let backendWriting = false;
let flushQueued = false;

/** Writes what the turn queued for the backend in one write (the rest after it, if short). */
async function flushBackend(): Promise<void> {
  flushQueued = false;
  if (backendWriting) return;
  backendWriting = true;
  while (toBackend.length > 0) toBackend.drop(await backend.write(toBackend.peek()));
  backendWriting = false;
}

/** Writes a client's owed replies; one write in flight per client keeps their order. */
async function flushClient(client: Client): Promise<void> {
  if (client.writing || client.closed) return;
  client.writing = true;
  try {
    while (client.out.length > 0) client.out.drop(await client.conn.write(client.out.peek()));
  } catch {
    closeClient(client); // the client left; its later replies are dropped
  }
  client.writing = false;
}

function closeClient(client: Client): void {
  if (client.closed) return;
  client.closed = true;
  client.conn.close();
}

async function readBackend(): Promise<void> {
  const touched = new Set<Client>();
  for (;;) {
    const n = await backend.read(fromBackend.freeSpace());
    if (n === null) throw new Error("the backend closed the connection");
    fromBackend.commit(n, (client, reply) => {
      client.out.append(reply);
      touched.add(client);
    });
    for (const client of touched) flushClient(client);
    touched.clear();
  }
}

async function serveClient(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const client: Client = { conn, out: new OutputQueue(), writing: false, closed: false };
  const input = new ClientInput();
  for (;;) {
    const n = client.closed ? null : await conn.read(input.freeSpace()).catch(() => null);
    if (n === null) break;
    const whole = input.commit(n);
    if (whole.requests === 0) continue;
    toBackend.append(whole.bytes);
    fromBackend.owners.push(client, whole.requests);
    if (!flushQueued) {
      flushQueued = true;
      queueMicrotask(flushBackend);
    }
  }
  closeClient(client);
}

readBackend().catch((err) => {
  console.error(`deno_ops_forwarder: ${err instanceof Error ? err.message : err}`);
  Deno.exit(1);
});
for await (const conn of Deno.listen({ hostname: HOST, port: listenPort })) serveClient(conn);
