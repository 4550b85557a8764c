import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { integer } from '@ballast/common';

/**
 * Lowers this process's CPU priority to the nice value `nice` (1 … 19; 0 leaves it; a
 * thread already lower is left as it is, never raised): every thread it has now, and — since a thread starts with its creator's priority — every
 * thread started later (libuv's pool, libvips' workers). Linux schedules threads, and
 * `os.setPriority(pid)` alone would lower the main thread only; each thread in
 * `/proc/self/task` is lowered too (where there is no `/proc`, the main thread only).
 *
 * Why a worker does this: conversions are long CPU work, the request path (gateway, API
 * servers, Redis) is short and latency-bound. Where they share cores, a worker below them
 * converts with whatever CPU the request path leaves, and one costly conversion cannot
 * delay everyone's requests.
 *
 * @returns how many threads were lowered
 * @throws {InvalidOptionError} when `nice` is not an integer from 0 to 19.
 */
export function lowerPriority(nice: number): number {
  integer('nice', nice, { min: 0, max: 19 });
  if (nice === 0) return 0;
  let lowered = 0;
  if (getPriority() < nice) {
    setPriority(nice); // the calling (main) thread: threads it starts from now on inherit it
    lowered++;
  }
  let tasks: string[] = [];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return lowered; // no /proc
  }
  for (const task of tasks) {
    if (Number(task) === process.pid) continue;
    try {
      if (getPriority(Number(task)) >= nice) continue;
      setPriority(Number(task), nice);
      lowered++;
    } catch {
      // the thread ended meanwhile
    }
  }
  return lowered;
}
