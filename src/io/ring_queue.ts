/** A FIFO queue over a power-of-two circular array: O(1) push and shift without shifting arrays. */
export class RingQueue<T> {
  #items: (T | undefined)[] = new Array(8);
  #head = 0;
  #size = 0;

  /** Number of queued items. */
  get size(): number {
    return this.#size;
  }

  /** Appends an item at the tail. */
  push(item: T): void {
    if (this.#size === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#size) & (this.#items.length - 1)] = item;
    this.#size++;
  }

  /** The head item, or undefined when empty. */
  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#items[this.#head];
  }

  /** Removes and returns the head item, or undefined when empty. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#size--;
    if (this.#size === 0) this.#head = 0;
    return item;
  }

  /** Removes every item, oldest first, and returns them. */
  drain(): T[] {
    const out: T[] = [];
    for (let item = this.shift(); item !== undefined; item = this.shift()) out.push(item);
    if (this.#items.length > 64) this.#items = new Array(8);
    return out;
  }

  #grow(): void {
    const grown = new Array<T | undefined>(this.#items.length * 2);
    for (let i = 0; i < this.#size; i++) {
      grown[i] = this.#items[(this.#head + i) & (this.#items.length - 1)];
    }
    this.#items = grown;
    this.#head = 0;
  }
}
