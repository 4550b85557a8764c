/**
 * A real resize worker process for the heartbeat tests: it consumes from the Redis
 * queue named by the environment, announces each job it takes on stdout ("claimed
 * <id>"), and holds it until a line arrives on stdin, then converts it and says
 * "stored <id>" once the queue has taken the result. The tests kill it (SIGKILL) or
 * pause it (SIGSTOP) while it holds a job.
 */
import { createInterface } from 'node:readline';
import { queueFromEnv } from '@ballast/app-queue';
import { ResizeWorker } from '../index.ts';

const name = process.env.BALLAST_WORKER_NAME ?? 'holding';
const queue = queueFromEnv(process.env, { member: name });
const lines = createInterface({ input: process.stdin });
const go: Array<() => void> = [];
lines.on('line', () => go.shift()?.());
const worker = new ResizeWorker({
  queue,
  name,
  concurrency: 1,
  beforeConvert: async (job) => {
    process.stdout.write(`claimed ${job.id}\n`);
    await new Promise<void>((resolve) => go.push(resolve));
  },
});
worker.events.on('done', ({ jobId }) => process.stdout.write(`stored ${jobId}\n`));
worker.events.on('error', ({ error }) => process.stdout.write(`error ${String(error)}\n`));
worker.start();
process.stdout.write('ready\n');
