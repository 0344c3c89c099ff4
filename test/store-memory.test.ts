import { MemoryStore } from '../src/store/memory-store.js';
import { runStoreConformance } from './support/store-conformance.js';

runStoreConformance('MemoryStore', async () => {
  const store = new MemoryStore();
  return { store, cleanup: () => store.close() };
});
