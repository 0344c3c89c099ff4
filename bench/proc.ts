/**
 * What a process on this machine used, read from `/proc/PID/stat`, `/proc/PID/status` and `/proc/PID/io`: CPU
 * time, RSS and its high-water mark, bytes written to storage. Shared by the benches that measure processes other
 * than themselves (worker processes, Postgres backends, `redis-server`, `restate-server`).
 *
 * ```ts
 * const before = procCpuMs(pid);
 * // ... the measured span ...
 * const cpuMs = procCpuMs(pid) - before;
 * ```
 * @module
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`: 100 on Linux). */
const CLOCK_TICKS = 100;
const MiB = 1024 * 1024;

/** What one process used so far. */
export interface ProcUsage {
  readonly rssMiB: number;
  /** `VmHWM`: the RSS high-water mark since the process started. */
  readonly peakRssMiB: number;
  /** user + system CPU since the process started, every thread. */
  readonly cpuMs: number;
}

/**
 * user + system CPU of `pid` since it started, in ms.
 *
 * @throws Error (ENOENT, EACCES) when the process is gone or not ours to read.
 */
export function procCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields 14 and 15 (utime, stime) after the command, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** CPU, RSS and peak RSS of `pid`. */
export function procUsage(pid: number): ProcUsage {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: (kib('VmRSS') * 1024) / MiB, peakRssMiB: (kib('VmHWM') * 1024) / MiB, cpuMs: procCpuMs(pid) };
}

/** The summed CPU ms of `pids`. */
export function cpuOf(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + procCpuMs(pid), 0);
}

/**
 * Bytes `pid` caused to be written to storage so far (`write_bytes` of `/proc/PID/io`: what reached the block
 * layer, or would have, not what sits in a write that was cancelled), and its write system calls (`syscw`).
 */
export function procIo(pid: number): { readonly writeBytes: number; readonly writeCalls: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(io)?.[1] ?? NaN);
  return { writeBytes: field('write_bytes'), writeCalls: field('syscw') };
}
