/**
 * The one object the controller reports to: it writes to the store and tells live listeners (CLI, UI).
 * @module
 */
import { EventEmitter } from 'node:events';
import type { ActionWrite, MapTotal, RunStore, RunUpdate, RunWrite } from '../store/run-store.js';
import type { AttemptRecord, LogLine } from '../types.js';

/** Events emitted by a {@link Recorder}. */
export interface RecorderEvents {
  run: [name: string, update: RunUpdate];
  action: [action: ActionWrite];
  attempt: [attempt: AttemptRecord];
  log: [line: LogLine];
  mapTotal: [total: MapTotal];
}

/** Feeds the store and live listeners. Listeners cost nothing when there are none. */
export class Recorder extends EventEmitter<RecorderEvents> {
  constructor(readonly store: RunStore) {
    super();
    this.setMaxListeners(0);
  }

  async createRun(run: RunWrite): Promise<void> {
    await this.store.createRun(run);
    this.emit('run', run.name, run);
  }

  run(name: string, update: RunUpdate): void {
    this.store.updateRun(name, update);
    if (this.listenerCount('run') > 0) this.emit('run', name, update);
  }

  /** Writes an action's current state. The caller may change `action` afterwards: store and listeners get a snapshot. */
  action(action: ActionWrite): void {
    this.store.putAction(action);
    if (this.listenerCount('action') > 0) this.emit('action', { ...action });
  }

  attempt(attempt: AttemptRecord): void {
    this.store.putAttempt(attempt);
    if (this.listenerCount('attempt') > 0) this.emit('attempt', attempt);
  }

  /** Records how many items a map will run. */
  mapTotal(total: MapTotal): void {
    this.store.putMapTotal(total);
    if (this.listenerCount('mapTotal') > 0) this.emit('mapTotal', total);
  }

  log(line: LogLine): void {
    this.store.appendLogs([line]);
    if (this.listenerCount('log') > 0) this.emit('log', line);
  }
}
