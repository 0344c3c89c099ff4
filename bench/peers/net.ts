/**
 * Small helpers of the bench's private services: a free loopback port, a pause.
 * @module
 */
import net from 'node:net';

/** A free TCP port on 127.0.0.1 (the OS picks it; it is closed again before use). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
