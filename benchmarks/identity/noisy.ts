/**
 * The noisy tenant of the isolation benchmark, in its own process: RATE requests/s, open
 * loop, for SECONDS; prints the count of each status on stdout. TARGET=healthz sends
 * `GET /healthz` instead (the server's cheapest answer, for comparison).
 */
import sharp from 'sharp';

const url = process.env.URL as string;
const key = process.env.KEY as string;
const rate = Number(process.env.RATE);
const seconds = Number(process.env.SECONDS);
const healthz = process.env.TARGET === 'healthz';
const image = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#993366' } })
  .jpeg()
  .toBuffer();
// Started from the parent over IPC once ready, so this process's start-up (Node, sharp, the
// image) is not measured as the noisy tenant's traffic.
if (process.send) {
  process.send('ready');
  await new Promise((resolve) => process.once('message', resolve));
}
const statuses: Record<string, number> = {};
const inflight: Promise<void>[] = [];
const start = performance.now();
for (let i = 0; i < rate * seconds; i++) {
  const wait = start + (i * 1000) / rate - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  inflight.push(
    (healthz
      ? fetch(`${url}/healthz`)
      : fetch(`${url}/v1/resize?width=16`, {
          method: 'POST',
          body: image,
          headers: { authorization: `Bearer ${key}`, 'content-type': 'image/jpeg' },
        })
    )
      .then(async (r) => {
        await r.arrayBuffer();
        return String(r.status);
      })
      .catch(() => 'error')
      .then((status) => {
        statuses[status] = (statuses[status] ?? 0) + 1;
      }),
  );
}
await Promise.all(inflight);
console.log(JSON.stringify(statuses));
process.disconnect?.();
