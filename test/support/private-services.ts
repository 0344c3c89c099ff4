/**
 * Private Redis and Postgres servers for the fault suite's restart cases: started from this machine's binaries,
 * on ports of their own, in temporary directories, so that a test may stop and restart them. The machine's
 * shared servers (5432, 6379) are never touched.
 *
 * Without the binaries the cases skip with a message saying what is missing; under `CI=true` they fail instead.
 * Postgres refuses to run as root: as root, its cluster belongs to the `postgres` user and every command runs
 * through `runuser -u postgres`.
 * @module
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';

/** Where this machine's Postgres 15 binaries are (`FLYTE_TEST_PG_BIN` overrides it). */
const PG_BIN = process.env['FLYTE_TEST_PG_BIN'] ?? '/usr/lib/postgresql/15/bin';

/** A free TCP port on 127.0.0.1 (asked of the kernel; free when asked). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** `skip` for a case that needs the binaries: `false` when present, else why not (thrown under `CI=true`). */
export function privateServicesSkip(): string | false {
  const missing: string[] = [];
  if (!onPath('redis-server')) missing.push('redis-server (on PATH)');
  for (const bin of ['initdb', 'pg_ctl']) if (!existsSync(join(PG_BIN, bin))) missing.push(join(PG_BIN, bin));
  if (process.getuid?.() === 0 && !onPath('runuser')) missing.push('runuser (Postgres cannot run as root)');
  if (missing.length === 0) return false;
  const message = `the restart cases start private servers, and need ${missing.join(', ')}; set FLYTE_TEST_PG_BIN`;
  if (process.env['CI'] === 'true') throw new Error(`${message}. Under CI=true the fault suite must run.`);
  return message;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A private `redis-server`: {@link PrivateRedis.restart} stops it and starts it again on the same port. */
export class PrivateRedis {
  readonly port: number;
  readonly dir: string;
  readonly #persistent: boolean;
  #process: ChildProcess | undefined;
  #log = '';

  private constructor(port: number, dir: string, persistent: boolean) {
    this.port = port;
    this.dir = dir;
    this.#persistent = persistent;
  }

  /**
   * Starts a server on a free port. `persistent`: every write is appended and fsync'd (`--appendonly yes
   * --appendfsync always`), so that a restart keeps the queues; without it a restart loses every job.
   */
  static async start(options: { persistent: boolean }): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), mkdtempSync(join(tmpdir(), 'flyte-redis-')), options.persistent);
    await redis.#start();
    return redis;
  }

  /** `redis://127.0.0.1:PORT` with `?prefix=NAME`. */
  url(prefix: string): string {
    return `redis://127.0.0.1:${this.port}?prefix=${prefix}`;
  }

  /** What the server printed. */
  get log(): string {
    return this.#log;
  }

  async #start(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--dir', this.dir];
    if (this.#persistent) args.push('--appendonly', 'yes', '--appendfsync', 'always');
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => (this.#log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.#log += d.toString()));
    this.#process = child;
    await until(`redis-server on port ${this.port} to answer:\n${this.#log}`, () => this.#answers());
  }

  async #answers(): Promise<boolean> {
    const client = new Redis({ port: this.port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return (await client.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  }

  /** Stops the server (SIGTERM: it writes its append-only file and exits) and waits until it is gone. */
  async stop(): Promise<void> {
    const child = this.#process;
    this.#process = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await exited;
  }

  /** Stops the server, waits `downMs`, and starts it again on the same port and directory. */
  async restart(downMs = 0): Promise<void> {
    await this.stop();
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.#start();
  }

  /** Stops the server and removes its directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A private Postgres cluster (`initdb` in a temporary directory, trust auth on 127.0.0.1, database `test`). */
export class PrivatePostgres {
  readonly port: number;
  readonly dir: string;

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  /** Creates the cluster and starts it on a free port. */
  static async start(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'flyte-pg-'));
    const server = new PrivatePostgres(await freePort(), dir);
    if (process.getuid?.() === 0) {
      const { uid, gid } = postgresUser();
      chownSync(dir, uid, gid);
      chmodSync(dir, 0o700);
    }
    server.#run('initdb', ['-D', server.#data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
    await server.#start();
    const client = new pg.Client({ connectionString: server.url('postgres') });
    await client.connect();
    try {
      await client.query('CREATE DATABASE test');
    } finally {
      await client.end();
    }
    return server;
  }

  get #data(): string {
    return join(this.dir, 'data');
  }

  /** `postgres://postgres@127.0.0.1:PORT/test` with `?schema=NAME` (or the database `database`, no schema). */
  url(schemaOrDatabase: string): string {
    return schemaOrDatabase === 'postgres'
      ? `postgres://postgres@127.0.0.1:${this.port}/postgres`
      : `postgres://postgres@127.0.0.1:${this.port}/test?schema=${schemaOrDatabase}`;
  }

  /** Runs a binary of the cluster, as the `postgres` user when this process is root. */
  #run(bin: string, args: string[]): string {
    const command = join(PG_BIN, bin);
    const asRoot = process.getuid?.() === 0;
    try {
      return execFileSync(asRoot ? 'runuser' : command, asRoot ? ['-u', 'postgres', '--', command, ...args] : args, {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string };
      throw new Error(`${bin} ${args.join(' ')} failed: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`, {
        cause: e,
      });
    }
  }

  async #start(): Promise<void> {
    const options = `-p ${this.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${this.dir} -c fsync=off`;
    this.#run('pg_ctl', ['-D', this.#data, '-o', options, '-l', join(this.dir, 'log'), '-w', '-t', '60', 'start']);
    await until(`Postgres on port ${this.port} to answer`, () => this.#answers());
  }

  async #answers(): Promise<boolean> {
    const client = new pg.Client({ connectionString: this.url('postgres'), connectionTimeoutMillis: 2_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Stops the server at once (`-m fast`: sessions are ended, in-flight transactions rolled back). */
  stop(): void {
    if (!existsSync(join(this.#data, 'postmaster.pid'))) return;
    this.#run('pg_ctl', ['-D', this.#data, '-m', 'fast', '-w', '-t', '60', 'stop']);
  }

  /** Starts a stopped server again, on the same port. */
  async startAgain(): Promise<void> {
    await this.#start();
  }

  /** Stops the server, waits `downMs`, and starts it again. */
  async restart(downMs = 0): Promise<void> {
    this.stop();
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.#start();
  }

  /** Stops the server and removes the cluster. */
  destroy(): void {
    try {
      this.stop();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string): number => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}
