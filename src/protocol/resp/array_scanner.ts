/**
 * Finds the complete elements of an array reply while it arrives (an MGET part of 16 MB
 * values), for a merge written as its parts come in (src/protocol/merge_stream.ts).
 */
import type { ElementScanner } from "../merge_stream.ts";
import {
  ARRAY,
  BOOLEAN,
  BULK,
  DOUBLE,
  findCrlf,
  INTEGER,
  NULL,
  parseInteger,
  SIMPLE,
} from "./bytes.ts";

/**
 * Scans an array of flat values (bulk strings, nulls, simple strings, numbers): what MGET
 * answers. Anything else (an error reply, a nested value) is refused: such a reply is
 * merged once complete, as before. The reply was framed by the connection's framer, which
 * checks every byte: the scanner only measures.
 */
export class ArrayElementScanner implements ElementScanner {
  /** Elements the array has; -1 until its header line is in. */
  #count = -1;
  #seen = 0;
  /** Where the next element starts, from the reply's start. */
  #at = 0;

  get seen(): number {
    return this.#seen;
  }

  get pendingFrom(): number {
    return this.#count >= 0 && this.#seen < this.#count ? this.#at : -1;
  }

  scan(data: Uint8Array, start: number, end: number, bounds: number[]): boolean {
    if (this.#count < 0) {
      if (start >= end) return true;
      if (data[start] !== ARRAY) return false;
      const lineEnd = findCrlf(data, start + 1, end);
      if (lineEnd < 0) return true;
      const count = parseInteger(data, start + 1, lineEnd);
      if (!(count >= 0)) return false;
      this.#count = count;
      this.#at = lineEnd + 2 - start;
    }
    while (this.#seen < this.#count) {
      const at = start + this.#at;
      if (at >= end) return true;
      const lineEnd = findCrlf(data, at + 1, end);
      if (lineEnd < 0) return true;
      let next = lineEnd + 2;
      switch (data[at]) {
        case BULK: {
          const length = parseInteger(data, at + 1, lineEnd);
          if (Number.isNaN(length)) return false;
          if (length >= 0) next += length + 2;
          if (next > end) return true;
          break;
        }
        case NULL:
        case SIMPLE:
        case INTEGER:
        case DOUBLE:
        case BOOLEAN:
          break;
        default:
          return false;
      }
      bounds.push(this.#at, next - start);
      this.#at = next - start;
      this.#seen++;
    }
    return true;
  }
}
