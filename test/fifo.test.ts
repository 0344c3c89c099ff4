/** The internal FIFO queue behind map windows, completion queues and semaphore waiters. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Fifo } from '../src/internal/fifo.js';

describe('Fifo', () => {
  it('keeps order across compactions, interleaving pushes and shifts', () => {
    const q = new Fifo<number>();
    const out: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 300; i++) q.push(next++);
      for (let i = 0; i < 250; i++) out.push(q.shift() as number);
    }
    assert.equal(q.length, next - out.length);
    assert.equal(q.peek(), out.length);
    while (q.length > 0) out.push(q.shift() as number);
    assert.deepEqual(out, Array.from({ length: next }, (_, i) => i));
    assert.equal(q.shift(), undefined);
    assert.equal(q.peek(), undefined);
  });
});
