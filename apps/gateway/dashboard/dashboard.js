// The live dashboard: loads the sample history from /dashboard/data, then follows
// /dashboard/events (server-sent events, one sample a second), falling back to polling.
// Plain browser JavaScript and uPlot: no build step. State is on window.ballastDashboard
// (the browser test reads it).
(() => {
  const base = location.pathname.replace(/\/+$/, '');
  const STALE_MS = 3000;
  const state = {
    samples: [],
    charts: {},
    intervalMs: 1000,
    lastReceivedAt: 0,
    /** Age of the newest sample when it was received, ms (server clock vs. this one; loopback: same machine). */
    lastAgeMs: null,
    stale: true,
    transport: 'none',
    loadMs: null,
    upstreamDownSince: {},
  };
  window.ballastDashboard = state;

  const colors = ['#58a6ff', '#f0883e', '#3fb950', '#bc8cff', '#f85149', '#d29922', '#39c5cf'];
  const fmt = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toFixed(digits));

  function chart(id, series, scales = {}, axes) {
    const el = document.getElementById(id);
    const opts = {
      width: Math.max(300, el.clientWidth || 520),
      height: 200,
      scales: { x: { time: true }, ...scales },
      series: [{}, ...series.map((s, i) => ({ stroke: s.color ?? colors[i % colors.length], width: 1.5, spanGaps: false, ...s }))],
      axes: axes ?? [
        { stroke: '#7d8893', grid: { stroke: '#26303b' } },
        { stroke: '#7d8893', grid: { stroke: '#26303b' } },
      ],
      legend: { live: false },
    };
    const data = [[], ...series.map(() => [])];
    const plot = new uPlot(opts, data, el);
    state.charts[id] = { plot, series: series.map((s) => s.label) };
    return plot;
  }

  const axis = (scale, side, label) => ({
    scale,
    side,
    stroke: '#7d8893',
    grid: { show: side === 3, stroke: '#26303b' },
    label,
    labelSize: 14,
    size: 50,
  });
  const x = { stroke: '#7d8893', grid: { stroke: '#26303b' } };
  let phiIds = [];

  function build() {
    chart('chart-rate', [{ label: 'answered/s' }, { label: 'shed/s', color: '#f85149' }]);
    chart('chart-yield', [{ label: 'yield %' }, { label: 'harvest %', color: '#3fb950' }], {
      y: { range: (_u, min) => [Math.min(min ?? 100, 99) - 1, 100.5] },
    });
    chart('chart-latency', [{ label: 'p50' }, { label: 'p99', color: '#f0883e' }, { label: 'p99.9', color: '#f85149' }], {
      y: { distr: 3 },
    });
    chart(
      'chart-queue',
      [
        { label: 'depth', scale: 'jobs' },
        { label: 'oldest job age s', scale: 's', color: '#d29922' },
      ],
      { jobs: {}, s: {} },
      [x, axis('jobs', 3, 'jobs'), axis('s', 1, 's')],
    );
    chart('chart-workers', [{ label: 'busy slots %', color: '#bc8cff' }], { y: { range: [0, 100] } });
  }

  function buildPhi(ids) {
    const el = document.getElementById('chart-phi');
    el.innerHTML = '';
    phiIds = ids;
    chart(
      'chart-phi',
      ids.map((id) => ({ label: id })),
      { y: { range: (_u, _min, max) => [0, Math.max(10, Math.min(max ?? 10, 50))] } },
    );
  }

  const pct = (v) => (v === null || v === undefined ? null : v * 100);
  function redraw() {
    const s = state.samples;
    const xs = s.map((p) => p.t / 1000);
    const set = (id, cols) => state.charts[id]?.plot.setData([xs, ...cols]);
    set('chart-rate', [s.map((p) => p.rps), s.map((p) => p.shedPerSec)]);
    set('chart-yield', [s.map((p) => pct(p.yield)), s.map((p) => pct(p.harvest))]);
    set('chart-latency', [s.map((p) => p.p50), s.map((p) => p.p99), s.map((p) => p.p999)]);
    set('chart-queue', [s.map((p) => p.queueDepth), s.map((p) => (p.queueOldestAgeMs === null ? null : p.queueOldestAgeMs / 1000))]);
    set('chart-workers', [s.map((p) => pct(p.workerUtilisation))]);
    const last = s[s.length - 1];
    if (!last) return;
    const ids = last.upstreams.map((u) => u.id);
    if (ids.join() !== phiIds.join()) buildPhi(ids);
    set(
      'chart-phi',
      ids.map((id) => s.map((p) => Math.min(p.upstreams.find((u) => u.id === id)?.phi ?? null, 1e6))),
    );
    figures(last);
    upstreams(last);
  }

  function figures(p) {
    const items = [
      ['req/s', fmt(p.rps)],
      ['yield', p.yield === null ? '–' : `${fmt(p.yield * 100, 2)}%`],
      ['p50 ms', fmt(p.p50)],
      ['p99 ms', fmt(p.p99)],
      ['p99.9 ms', fmt(p.p999)],
      ['shed/s', fmt(p.shedPerSec)],
      ['harvest', p.harvest === null ? '–' : `${fmt(p.harvest * 100, 1)}%`],
      ['queue depth', fmt(p.queueDepth, 0)],
      ['oldest job s', p.queueOldestAgeMs === null ? '–' : fmt(p.queueOldestAgeMs / 1000, 2)],
      ['workers busy', p.workerUtilisation === null ? '–' : `${fmt(p.workerUtilisation * 100, 0)}%`],
      ['dimmer', p.dimmer === null ? 'off' : fmt(p.dimmer, 2)],
    ];
    document.getElementById('figures').innerHTML = items.map(([k, v]) => `<div class="figure"><b>${v}</b><span>${k}</span></div>`).join('');
  }

  function upstreams(p) {
    const rows = p.upstreams.map((u) => {
      const down = !(u.balancer === 'healthy' || u.balancer === 'warming') || u.detector !== 'alive';
      const degraded = !down && u.circuit !== 'closed';
      const cls = down ? 'down' : degraded ? 'degraded' : 'up';
      if (down) state.upstreamDownSince[u.id] ??= Date.now();
      else delete state.upstreamDownSince[u.id];
      return `<tr class="${cls}" data-upstream="${u.id}" data-state="${cls}"><td><span class="dot"></span></td><td>${u.id}</td><td>${u.balancer}</td><td>${u.circuit}</td><td>${u.detector}</td><td>${u.phi > 1e6 ? '∞' : fmt(u.phi, 2)}</td><td>${u.inFlight}</td></tr>`;
    });
    document.querySelector('#upstreams tbody').innerHTML = rows.join('');
  }

  function usage(tenants) {
    const el = document.getElementById('usage');
    if (!tenants) return;
    el.classList.remove('muted');
    el.innerHTML = `<table><thead><tr><th>tenant</th><th>requests</th><th>CPU s</th><th>MB</th></tr></thead><tbody>${tenants
      .map((t) => `<tr><td>${t.tenant}</td><td>${t.requests}</td><td>${fmt(t.cpuSeconds, 2)}</td><td>${fmt(t.bytes / 1e6, 1)}</td></tr>`)
      .join('')}</tbody></table>`;
  }

  function add(samples) {
    if (samples.length === 0) return;
    const lastT = state.samples.length ? state.samples[state.samples.length - 1].t : 0;
    for (const s of samples) if (s.t > lastT) state.samples.push(s);
    if (state.samples.length > 300) state.samples.splice(0, state.samples.length - 300);
    state.lastReceivedAt = Date.now();
    state.lastAgeMs = Date.now() - state.samples[state.samples.length - 1].t;
    redraw();
  }

  function tick() {
    const el = document.getElementById('status');
    const newest = state.samples[state.samples.length - 1];
    if (!newest) return;
    const age = Date.now() - newest.t;
    state.stale = age > STALE_MS;
    el.className = `status ${state.stale ? 'stale' : 'live'}`;
    el.textContent = state.stale
      ? `STALE: no data for ${(age / 1000).toFixed(1)} s`
      : `live · data ${(age / 1000).toFixed(1)} s old · ${state.transport}`;
  }

  async function poll() {
    const since = state.samples.length ? state.samples[state.samples.length - 1].t : 0;
    try {
      const res = await fetch(`${base}/data?since=${since}`, { cache: 'no-store' });
      const body = await res.json();
      state.intervalMs = body.intervalMs;
      add(body.samples);
      usage(body.usage);
    } catch {
      // the gateway is unreachable: the status turns stale by itself
    }
  }

  function follow() {
    if (!('EventSource' in window)) return;
    const events = new EventSource(`${base}/events`);
    events.addEventListener('sample', (e) => {
      state.transport = 'events';
      add([JSON.parse(e.data)]);
    });
    events.onerror = () => {
      state.transport = 'polling';
    };
  }

  build();
  poll().then(() => {
    follow();
    const nav = performance.getEntriesByType('navigation')[0];
    state.loadMs = nav ? Math.round(performance.now() - nav.startTime) : null;
    document.getElementById('footer').textContent =
      `page loaded and first data drawn in ${state.loadMs} ms · samples every ${state.intervalMs} ms · data from ${base}/data and ${base}/events`;
  });
  // Polling goes on beside the events: it fills any gap, and takes over if they stop.
  setInterval(() => {
    if (Date.now() - state.lastReceivedAt > state.intervalMs * 1.5) poll();
  }, 1000);
  setInterval(tick, 250);
  setInterval(async () => {
    try {
      const res = await fetch(`${base}/data?since=${Date.now()}`, { cache: 'no-store' });
      usage((await res.json()).usage);
    } catch {}
  }, 30_000);
})();
