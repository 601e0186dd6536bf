/**
 * The libc socket and epoll calls made through Deno's FFI by `io = "ffi"`
 * (`ffi_sockets.ts`) and the bench's raw forwarder, with the Linux constants they use.
 * Loading it needs --allow-ffi and glibc's libc.so.6. Linux only (x86_64 and aarch64
 * epoll_event layouts).
 */

import { ipv4Octets } from "../../../net/ipv4.ts";

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  // The same call on a helper thread: waits without blocking the event loop. Its events go
  // to memory from malloc, never to a JS buffer: a worker terminated mid-wait frees its heap
  // while the helper thread may still write.
  epoll_wait_off_thread: {
    name: "epoll_wait",
    parameters: ["i32", "pointer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // ssize_t results read as i32 (the low half of the register on x86_64 and aarch64): no
  // BigInt result per call; callers pass at most MAX_IO_BYTES, so a count always fits. The
  // length stays a BigInt: a number there (which Deno accepts) leaves V8's fast call path,
  // and cost 45% more CPU per request at pipeline 1.
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  malloc: { parameters: ["usize"], result: "pointer" },
  malloc_trim: { parameters: ["usize"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  // Error paths only: the text of an errno, as Deno's own socket errors give it.
  strerror: { parameters: ["i32"], result: "pointer" },
});
export const c = libc.symbols;

/** Gives malloc's free pages back to the system (after a burst of clients left). */
export function mallocTrim(): void {
  libc.symbols.malloc_trim(0n);
}
/**
 * The libc calls above: what the raw sockets call through (`socket_libc.ts`, where a fault
 * injector can wrap them).
 */
export type Libc = typeof c;

export const AF_INET = 2;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const EPOLL_CLOEXEC = 0o2000000;
/** Most bytes one recv or send is asked for (its count must fit an i32). */
export const MAX_IO_BYTES = 1 << 30;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_ERROR = 4;
export const SO_REUSEPORT = 15;
export const IPPROTO_TCP = 6;
export const TCP_NODELAY = 1;
export const F_SETFL = 4;
export const O_NONBLOCK = 0o4000;
/** shutdown(2): no more sends (the peer reads EOF). */
export const SHUT_WR = 1;
export const MSG_NOSIGNAL = 0x4000;
export const EPERM = 1;
export const EINTR = 4;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EPIPE = 32;
export const EADDRINUSE = 98;
export const ENETUNREACH = 101;
export const ECONNABORTED = 103;
export const ECONNRESET = 104;
export const ETIMEDOUT = 110;
export const ECONNREFUSED = 111;
export const EHOSTUNREACH = 113;
export const EINPROGRESS = 115;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x1;
export const EPOLLOUT = 0x4;
export const EPOLLERR = 0x8;
export const EPOLLHUP = 0x10;
export const EPOLLRDHUP = 0x2000;
export const EPOLLET = 0x80000000;
/** struct epoll_event: packed (12 bytes) on x86_64, 16 bytes elsewhere. */
export const EVENT_SIZE = Deno.build.arch === "x86_64" ? 12 : 16;
/** Where an epoll_event's data starts (a u64: here a descriptor and its watch's generation). */
export const EVENT_DATA_AT = Deno.build.arch === "x86_64" ? 4 : 8;

// errno lives per thread: every synchronous call here runs on the thread that loaded this.
const errnoView = new Deno.UnsafePointerView(c.__errno_location()!);

/** errno of the last failed call on this thread. */
export function errno(): number {
  return errnoView.getInt32();
}

const errnoSlot = new Int32Array(
  Deno.UnsafePointerView.getArrayBuffer(c.__errno_location()!, Int32Array.BYTES_PER_ELEMENT),
);

/** Sets this thread's errno: what a fault injector's failed call leaves behind. */
export function setErrno(value: number): void {
  errnoSlot[0] = value;
}

const ERROR_CLASSES: Record<number, new (message: string) => Error> = {
  [ECONNREFUSED]: Deno.errors.ConnectionRefused,
  [ECONNRESET]: Deno.errors.ConnectionReset,
  [ECONNABORTED]: Deno.errors.ConnectionAborted,
  [EPIPE]: Deno.errors.BrokenPipe,
  [ETIMEDOUT]: Deno.errors.TimedOut,
  [ENETUNREACH]: Deno.errors.NetworkUnreachable,
  [EADDRINUSE]: Deno.errors.AddrInUse,
};

/**
 * The error for errno `code`, worded as Deno's own socket errors are ("Connection refused
 * (os error 111)"), of the same `Deno.errors` class where Deno has one: messages name the
 * OS error the same way on both `io` paths.
 */
export function osError(code: number, context = ""): Error {
  const text = c.strerror(code);
  const name = text === null ? `Unknown error ${code}` : Deno.UnsafePointerView.getCString(text);
  const message = `${context}${name} (os error ${code})`;
  return new (ERROR_CLASSES[code] ?? Error)(message);
}

/** A C int as bytes, for setsockopt and socklen_t arguments. */
export function int32Bytes(value: number): Uint8Array {
  return new Uint8Array(new Int32Array([value]).buffer);
}

/** sockaddr_in of a dotted-quad IPv4 literal and a port, or null for anything else. */
export function ipv4Address(host: string, port: number): Uint8Array | null {
  const parts = ipv4Octets(host);
  if (parts === null) return null;
  const addr = new Uint8Array(16);
  const view = new DataView(addr.buffer);
  view.setUint16(0, AF_INET, true);
  view.setUint16(2, port, false);
  addr.set(parts, 4);
  return addr;
}
