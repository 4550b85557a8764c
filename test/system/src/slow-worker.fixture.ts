/**
 * A real resize worker process for the "worker killed mid-job" test: it consumes from
 * the Redis queue named by the environment, announces each job it takes on stdout,
 * and then holds it (the test kills the process with SIGKILL while it does).
 */
import { queueFromEnv } from '@ballast/app-queue';
import { ResizeWorker } from '@ballast/app-worker';

const queue = queueFromEnv();
const worker = new ResizeWorker({
  queue,
  name: 'doomed',
  concurrency: 1,
  beforeConvert: async (job) => {
    process.stdout.write(`claimed ${job.id}\n`);
    await new Promise(() => {}); // never finishes: the process is killed first
  },
});
worker.start();
process.stdout.write('ready\n');
