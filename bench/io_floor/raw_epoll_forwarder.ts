/**
 * The same forwarder as `deno_ops_forwarder.ts`, on raw sockets: libc's epoll, recv and
 * send through Deno's FFI, one epoll set for the clients and the backend. It is the
 * measurement behind "what would Aster gain off Deno's socket ops" (bench/README.md); it
 * is not part of Aster, which runs without --allow-ffi.
 *
 * Usage: deno run --allow-ffi bench/io_floor/raw_epoll_forwarder.ts LISTEN_PORT BACKEND_PORT
 * Linux only (x86_64 and aarch64 epoll_event layouts). Runs until killed.
 */
import { BackendInput, ClientInput, forwarderPorts, OutputQueue } from "./request_pipe.ts";
import {
  AF_INET,
  c,
  EAGAIN,
  EINTR,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLLIN,
  EPOLLOUT,
  errno,
  EVENT_DATA_AT,
  EVENT_SIZE,
  F_SETFL,
  int32Bytes,
  IPPROTO_TCP,
  ipv4Address,
  MSG_NOSIGNAL,
  O_NONBLOCK,
  SO_REUSEADDR,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_NODELAY,
} from "../../src/runtime/deno/ffi/libc.ts";

const [listenPort, backendPort] = forwarderPorts(Deno.args, "raw_epoll_forwarder.ts");

const MAX_EVENTS = 256;
/** How long one off-thread wait lasts before the loop looks again, ms. */
const WAIT_MS = 1000;
const ONE = int32Bytes(1);

function check(result: number, what: string): number {
  if (result < 0) throw new Error(`${what} failed: errno ${errno()}`);
  return result;
}

function ipv4Loopback(port: number): Uint8Array {
  return ipv4Address("127.0.0.1", port)!;
}

/** A socket in the epoll set: its bytes not yet taken by send, and what reads it. */
interface Peer {
  fd: number;
  out: OutputQueue;
  /** EPOLLOUT is armed: send took less than was queued. */
  waitingToWrite: boolean;
  onReadable(): void;
}

const epoll = check(c.epoll_create1(0), "epoll_create1");
const peers = new Map<number, Peer>();
const event = new Uint8Array(EVENT_SIZE);
const eventView = new DataView(event.buffer);

function watch(peer: Peer, op: number, events: number): void {
  eventView.setUint32(0, events, true);
  eventView.setUint32(EVENT_DATA_AT, peer.fd, true);
  check(c.epoll_ctl(epoll, op, peer.fd, event), "epoll_ctl");
}

/** Sends what `peer` has queued; arms EPOLLOUT for the rest. False when the peer failed. */
function flush(peer: Peer): boolean {
  while (peer.out.length > 0) {
    const bytes = peer.out.peek();
    const sent = c.send(peer.fd, bytes, BigInt(bytes.length), MSG_NOSIGNAL);
    if (sent >= 0) {
      peer.out.drop(sent);
      continue;
    }
    const error = errno();
    if (error === EINTR) continue;
    if (error !== EAGAIN) return false;
    if (!peer.waitingToWrite) watch(peer, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
    peer.waitingToWrite = true;
    return true;
  }
  if (peer.waitingToWrite) watch(peer, EPOLL_CTL_MOD, EPOLLIN);
  peer.waitingToWrite = false;
  return true;
}

/** recv into `into`: bytes read, 0 at EOF or on error, -1 when nothing is there yet. */
function receive(fd: number, into: Uint8Array): number {
  for (;;) {
    const n = c.recv(fd, into, BigInt(into.length), 0);
    if (n >= 0) return n;
    const error = errno();
    if (error === EINTR) continue;
    return error === EAGAIN ? -1 : 0;
  }
}

// The backend: one blocking connect, then non-blocking like the rest.
const backendFd = check(c.socket(AF_INET, SOCK_STREAM, 0), "socket");
check(c.connect(backendFd, ipv4Loopback(backendPort), 16), `connect to port ${backendPort}`);
check(c.setsockopt(backendFd, IPPROTO_TCP, TCP_NODELAY, ONE, 4), "setsockopt");
check(c.fcntl(backendFd, F_SETFL, O_NONBLOCK), "fcntl");
const fromBackend = new BackendInput<ClientPeer>();
const touched = new Set<ClientPeer>();

interface ClientPeer extends Peer {
  closed: boolean;
}

const backend: Peer = {
  fd: backendFd,
  out: new OutputQueue(),
  waitingToWrite: false,
  onReadable() {
    const n = receive(backendFd, fromBackend.freeSpace());
    if (n < 0) return;
    if (n === 0) throw new Error("the backend closed the connection");
    fromBackend.commit(n, (client, reply) => {
      if (client.closed) return;
      client.out.append(reply);
      touched.add(client);
    });
    for (const client of touched) if (!flush(client)) closeClient(client);
    touched.clear();
  },
};
peers.set(backendFd, backend);
watch(backend, EPOLL_CTL_ADD, EPOLLIN);

function closeClient(client: ClientPeer): void {
  if (client.closed) return;
  client.closed = true;
  peers.delete(client.fd);
  watch(client, EPOLL_CTL_DEL, 0);
  c.close(client.fd);
}

function newClient(fd: number): ClientPeer {
  const input = new ClientInput();
  const client: ClientPeer = {
    fd,
    out: new OutputQueue(),
    waitingToWrite: false,
    closed: false,
    onReadable() {
      const n = receive(fd, input.freeSpace());
      if (n < 0) return;
      if (n === 0) return closeClient(client);
      const whole = input.commit(n);
      if (whole.requests === 0) return;
      backend.out.append(whole.bytes);
      fromBackend.owners.push(client, whole.requests);
    },
  };
  return client;
}

const listenFd = check(c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), "socket");
check(c.setsockopt(listenFd, SOL_SOCKET, SO_REUSEADDR, ONE, 4), "setsockopt");
check(c.bind(listenFd, ipv4Loopback(listenPort), 16), `bind to port ${listenPort}`);
check(c.listen(listenFd, 1024), "listen");
const listener: Peer = {
  fd: listenFd,
  out: new OutputQueue(),
  waitingToWrite: false,
  onReadable() {
    for (;;) {
      const fd = c.accept4(listenFd, null, null, SOCK_NONBLOCK);
      if (fd < 0) return;
      c.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, ONE, 4);
      const client = newClient(fd);
      peers.set(fd, client);
      watch(client, EPOLL_CTL_ADD, EPOLLIN);
    }
  },
};
peers.set(listenFd, listener);
watch(listener, EPOLL_CTL_ADD, EPOLLIN);

const events = new Uint8Array(EVENT_SIZE * MAX_EVENTS);
/** The off-thread wait takes a pointer (this process has no worker whose heap could go). */
const eventsAt = Deno.UnsafePointer.of(events);
const eventsView = new DataView(events.buffer);

/** Handles `count` events, then sends the backend what they queued in one send. */
function handle(count: number): void {
  for (let i = 0; i < count; i++) {
    const flags = eventsView.getUint32(i * EVENT_SIZE, true);
    const peer = peers.get(eventsView.getUint32(i * EVENT_SIZE + EVENT_DATA_AT, true));
    if (peer === undefined) continue; // closed earlier in this batch
    if (flags & EPOLLOUT && !flush(peer)) {
      if (peer === backend) throw new Error("sending to the backend failed");
      closeClient(peer as ClientPeer);
      continue; // its descriptor is closed (and may be reused by an accept below)
    }
    if (flags & ~EPOLLOUT) peer.onReadable();
  }
  if (!flush(backend)) throw new Error("sending to the backend failed");
}

// Poll without blocking while there is work; wait on a helper thread when there is none,
// so the event loop (and the process's signal handling) keeps running.
for (;;) {
  const ready = c.epoll_wait(epoll, events, MAX_EVENTS, 0);
  if (ready > 0) {
    handle(ready);
    continue;
  }
  const waited = await c.epoll_wait_off_thread(epoll, eventsAt, MAX_EVENTS, WAIT_MS);
  if (waited > 0) handle(waited);
}
