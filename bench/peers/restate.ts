/**
 * Restate in `npm run bench:peers`: a fresh `restate-server` per sample (the `@restatedev/restate-server` package's
 * binary, every listener on 127.0.0.1, its data in a temporary directory that is deleted afterwards), and this
 * process as the SDK's endpoint (an HTTP/2 server on 127.0.0.1; Restate's SDK needs Node ≥ 22). A `parent`
 * service's handler calls the `child` service's handler `n` times (`ctx.serviceClient`: each call an invocation
 * of its own, journaled by the server), a window of 64 calls refilled through `RestatePromise.race` for the fan-out
 * (Restate's deterministic combinator), a loop of awaits for the chain. The bench
 * invokes the parent through the server's ingress and waits for its answer.
 * @module
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import * as restate from '@restatedev/restate-sdk';
import { freePort, sleep } from './net.js';
import type { Peer, Session, Workload } from './peers.js';

const child = restate.service({
  name: 'child',
  handlers: {
    double: async (_ctx: restate.Context, x: number): Promise<number> => x * 2,
  },
});
const Child: typeof child = { name: 'child' };

const parent = restate.service({
  name: 'parent',
  handlers: {
    fanOut: async (ctx: restate.Context, input: { n: number; concurrency: number }): Promise<number> => {
      // A window of `concurrency` calls, refilled as each one ends. Restate's promises must not be awaited one by
      // one with `.then` (p-map does): the SDK reads a `.then` as "awaiting", and many at once as a concurrency
      // error. RestatePromise.race over the window, each call tagged with `.map`, is its deterministic way.
      const client = ctx.serviceClient(Child);
      const window = new Map<number, restate.RestatePromise<{ i: number; value: number }>>();
      let next = 0;
      let total = 0;
      const start = (): void => {
        const i = next++;
        window.set(
          i,
          client.double(i).map((value, failure) => {
            if (failure !== undefined) throw failure;
            return { i, value: value! };
          }),
        );
      };
      while (next < input.n && window.size < input.concurrency) start();
      while (window.size > 0) {
        const { i, value } = await restate.RestatePromise.race([...window.values()]);
        window.delete(i);
        total += value;
        if (next < input.n) start();
      }
      return total;
    },
    chain: async (ctx: restate.Context, n: number): Promise<number> => {
      const client = ctx.serviceClient(Child);
      let total = 0;
      for (let i = 0; i < n; i++) total += await client.double(i);
      return total;
    },
  },
});

/** The `restate-server` binary of the installed `@restatedev/restate-server-linux-x64` package. */
function serverBinary(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('@restatedev/restate-server-linux-x64/package.json');
  return path.join(path.dirname(pkg), 'bin', 'restate-server');
}

/** The configuration of one private server: every listener TCP on 127.0.0.1 only, its data in `dir`, no telemetry. */
function config(dir: string, ports: { admin: number; ingress: number; fabric: number }): string {
  return [
    'node-name = "peers"',
    `base-dir = "${dir}"`,
    'listen-mode = "tcp"',
    'bind-ip = "127.0.0.1"',
    `bind-port = ${ports.fabric}`,
    'disable-telemetry = true',
    '',
    '[admin]',
    `bind-port = ${ports.admin}`,
    '',
    '[ingress]',
    `bind-port = ${ports.ingress}`,
    '',
  ].join('\n');
}

/**
 * The local addresses `pid` listens on (TCP, IPv4 and IPv6), from its sockets' inodes in `/proc/PID/fd` and the
 * listening sockets of `/proc/net/tcp*`, as `127.0.0.1:9070`-like strings (IPv6 in hex).
 */
function listeners(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m !== null) inodes.add(m[1]!);
    } catch {
      // The descriptor closed between the listing and the read: not a listener now.
    }
  }
  const found: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] !== '0A' || !inodes.has(f[9] ?? '')) continue; // 0A: LISTEN
      const [hex, port] = f[1]!.split(':');
      const ip =
        hex!.length === 8
          ? (hex!.match(/../g) ?? [])
              .reverse()
              .map((b) => parseInt(b, 16))
              .join('.')
          : hex!;
      found.push(`${ip}:${parseInt(port!, 16)}`);
    }
  }
  return found;
}

/** Resolves once `url` answers with a 2xx, or throws after `ms`. */
async function ready(url: string, server: ChildProcess, log: () => string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`restate-server exited (${server.exitCode}):\n${log()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // Not listening yet: try again below.
    }
    if (Date.now() > deadline) throw new Error(`restate-server did not answer at ${url} in ${ms} ms:\n${log()}`);
    await sleep(100);
  }
}

const peer: Peer = async (ctx, use) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flyte-peers-restate-'));
  const ports = {
    admin: await freePort(),
    ingress: await freePort(),
    fabric: await freePort(),
    endpoint: await freePort(),
  };
  const configFile = path.join(dir, 'restate.toml');
  writeFileSync(configFile, config(path.join(dir, 'data'), ports));
  const binary = serverBinary();
  let log = '';
  const server = spawn(binary, ['--config-file', configFile], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  server.stdout.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
  server.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
  const endpoint = http2.createServer(restate.createEndpointHandler({ services: [child, parent] }));
  try {
    await new Promise<void>((resolve) => endpoint.listen(ports.endpoint, '127.0.0.1', resolve));
    await ready(`http://127.0.0.1:${ports.admin}/health`, server, () => log);
    const open = listeners(server.pid!).filter((a) => !a.startsWith('127.'));
    if (open.length > 0)
      throw new Error(`restate-server: expected to listen on 127.0.0.1 only; it listens on ${open.join(', ')}`);
    const registered = await fetch(`http://127.0.0.1:${ports.admin}/deployments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ uri: `http://127.0.0.1:${ports.endpoint}` }),
    });
    if (!registered.ok) {
      throw new Error(
        `restate: registering the endpoint: expected 2xx; received ${registered.status} ${await registered.text()}`,
      );
    }
    await ready(`http://127.0.0.1:${ports.ingress}/restate/health`, server, () => log);
    const invoke = async (handler: string, body: unknown): Promise<number> => {
      const res = await fetch(`http://127.0.0.1:${ports.ingress}/parent/${handler}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`restate: parent/${handler}: expected 200; received ${res.status} ${text}`);
      return Number(JSON.parse(text));
    };
    const session: Session = {
      run: (workload: Workload, n: number) =>
        workload === 'fanout' ? invoke('fanOut', { n, concurrency: ctx.concurrency }) : invoke('chain', n),
      workerPids: [],
      serverPids: [server.pid!],
      durability: async () => durabilitySettings(binary, configFile),
    };
    return await use(session);
  } finally {
    endpoint.close();
    if (server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
};

/** The settings of the effective configuration that decide what reaches the disk when (`--dump-config`). */
function durabilitySettings(binary: string, configFile: string): Record<string, string> {
  const dumped = spawnSync(binary, ['--config-file', configFile, '--dump-config'], { encoding: 'utf8' });
  const facts: Record<string, string> = {};
  let section = '';
  for (const line of dumped.stdout.split('\n')) {
    const header = /^\[([\w.-]+)\]/.exec(line);
    if (header !== null) section = `${header[1]}.`;
    const m = /^\s*([\w-]*(?:fsync|wal|durab|provider|replication|persist)[\w-]*)\s*=\s*(.+)$/i.exec(line);
    if (m !== null && !m[1]!.endsWith('compression')) facts[`${section}${m[1]}`] = m[2]!.trim();
  }
  return facts;
}

/** The Restate contender. */
export const peers: Record<string, Peer> = { restate: peer };
