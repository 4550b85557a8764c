/**
 * Hand-written SVG charts for the balancing report: a latency-percentile strip per
 * strategy (log scale), 100%-stacked request shares per server, and a heat map of p99
 * relative to the oracle. Plain SVG 1.1, no scripts, readable on GitHub.
 */

import { esc, svgChart } from '../../lib/svg.ts';

const PERCENTILES = [
  { key: 'p50', label: 'p50', color: '#2b8a3e' },
  { key: 'p90', label: 'p90', color: '#1971c2' },
  { key: 'p99', label: 'p99', color: '#e8590c' },
  { key: 'p999', label: 'p99.9', color: '#c92a2a' },
] as const;

export interface LatencyRow {
  name: string;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  /** Marks the reference row (drawn in italics). */
  reference?: boolean;
}

/** A latency for an axis or label: µs, ms or s. */
function fmtMs(ms: number): string {
  if (ms >= 1000) return `${Number((ms / 1000).toPrecision(3))} s`;
  if (ms >= 1) return `${Number(ms.toPrecision(3))} ms`;
  return `${Number((ms * 1000).toPrecision(3))} µs`;
}

/** Latency percentiles per strategy on a log axis, one row per strategy, in the given order. */
export function latencyChart(title: string, rows: LatencyRow[]): string {
  const left = 210;
  const right = 90;
  const top = 48;
  const rowH = 22;
  const width = 820;
  const plotW = width - left - right;
  const height = top + rows.length * rowH + 40;
  const values = rows.flatMap((r) => [r.p50, r.p90, r.p99, r.p999]).filter((v) => v > 0 && Number.isFinite(v));
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values, 1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values, 10)));
  const x = (v: number): number => left + (plotW * (Math.log10(Math.max(v, lo)) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
  const body: string[] = [];
  PERCENTILES.forEach((p, i) => {
    const lx = left + i * 80;
    body.push(`<circle cx="${lx + 5}" cy="33" r="4.5" fill="${p.color}"/><text x="${lx + 14}" y="37">${p.label}</text>`);
  });
  body.push(`<text x="${left + 330}" y="37" fill="#555">latency, log scale</text>`);
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v > hi * 1.0001) break;
      const gx = x(v).toFixed(1);
      body.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${top + rows.length * rowH}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`);
      if (m === 1 || plotW / Math.log10(hi / lo) > 140) {
        body.push(`<text x="${gx}" y="${top + rows.length * rowH + 16}" text-anchor="middle" fill="#555">${fmtMs(v)}</text>`);
      }
    }
  }
  rows.forEach((r, i) => {
    const cy = top + i * rowH + rowH / 2;
    if (i % 2 === 1) body.push(`<rect x="0" y="${top + i * rowH}" width="${width}" height="${rowH}" fill="#f8f9fa"/>`);
    body.push(
      `<text x="${left - 8}" y="${cy + 4}" text-anchor="end"${r.reference ? ' font-style="italic"' : ''}>${esc(r.name)}</text>`,
      `<line x1="${x(r.p50).toFixed(1)}" y1="${cy}" x2="${x(r.p999).toFixed(1)}" y2="${cy}" stroke="#adb5bd" stroke-width="2"/>`,
    );
    for (const p of PERCENTILES) body.push(`<circle cx="${x(r[p.key]).toFixed(1)}" cy="${cy}" r="5" fill="${p.color}"/>`);
    body.push(`<text x="${width - right + 8}" y="${cy + 4}" fill="#e8590c">p99 ${fmtMs(r.p99)}</text>`);
  });
  return svgChart(width, height, title, body);
}

export interface ShareRow {
  name: string;
  /** Share per server, summing to about 1. */
  share: number[];
}

/**
 * 100%-stacked bars of the share of requests each server received, one bar per strategy.
 * When a row's shares sum to less than 1, the rest is drawn in grey as `rest` (requests
 * whose server is unknown, e.g. timed out).
 */
export function shareChart(title: string, servers: string[], rows: ShareRow[], highlight?: number, rest?: string): string {
  const left = 210;
  const top = 48;
  const rowH = 22;
  const width = 820;
  const plotW = width - left - 30;
  const height = top + rows.length * rowH + 34;
  const palette = ['#4dabf7', '#74c0fc', '#a5d8ff', '#339af0', '#1c7ed6', '#91a7ff', '#748ffc', '#5c7cfa', '#bac8ff', '#4c6ef5'];
  const color = (i: number): string => (i === highlight ? '#fa5252' : palette[i % palette.length]!);
  const body: string[] = [];
  const legendW = Math.min(60, plotW / servers.length);
  servers.forEach((s, i) => {
    const lx = left + i * legendW;
    body.push(
      `<rect x="${lx}" y="28" width="10" height="10" fill="${color(i)}"/><text x="${lx + 13}" y="37" font-size="11">${esc(s)}</text>`,
    );
  });
  const restLabel = rest ?? '';
  const hasRest = rest !== undefined && rows.some((r) => r.share.reduce((a, b) => a + b, 0) < 0.995);
  if (hasRest) {
    body.push(`<rect x="10" y="28" width="10" height="10" fill="#ced4da"/><text x="23" y="37" font-size="11">${esc(restLabel)}</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    body.push(`<text x="${left - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${esc(r.name)}</text>`);
    let acc = 0;
    r.share.forEach((s, j) => {
      const w = s * plotW;
      if (w > 0) {
        body.push(
          `<rect x="${(left + acc).toFixed(1)}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${color(j)}" stroke="#fff" stroke-width="0.5"><title>${esc(servers[j] ?? '')}: ${(s * 100).toFixed(1)}%</title></rect>`,
        );
      }
      acc += w;
    });
    if (hasRest && acc < plotW - 0.5) {
      body.push(
        `<rect x="${(left + acc).toFixed(1)}" y="${y + 3}" width="${(plotW - acc).toFixed(1)}" height="${rowH - 6}" fill="#ced4da"><title>${esc(restLabel)}: ${((1 - acc / plotW) * 100).toFixed(1)}%</title></rect>`,
      );
    }
    if (highlight !== undefined && r.share[highlight] !== undefined) {
      body.push(
        `<text x="${left + plotW + 4}" y="${y + rowH / 2 + 4}" font-size="10" fill="#c92a2a">${(r.share[highlight] * 100).toFixed(0)}%</text>`,
      );
    }
  });
  const axisY = top + rows.length * rowH + 14;
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    body.push(`<text x="${(left + f * plotW).toFixed(1)}" y="${axisY}" text-anchor="middle" fill="#555">${f * 100}%</text>`);
  }
  return svgChart(width, height + 4, title, body);
}

/** A heat map: rows × columns of ratios (1 = as good as the reference), green to red on a log scale. */
export function ratioHeatmap(
  title: string,
  rows: string[],
  columns: string[],
  ratio: (row: number, column: number) => number | null,
): string {
  const left = 12 + Math.max(...rows.map((r) => r.length)) * 7.2;
  const top = 140;
  const cellW = 62;
  const cellH = 26;
  const width = left + columns.length * cellW + 20;
  const height = top + rows.length * cellH + 40;
  const body: string[] = [];
  columns.forEach((c, j) => {
    const cx = left + j * cellW + cellW / 2;
    body.push(`<text transform="translate(${cx + 4},${top - 6}) rotate(-45)" font-size="11">${esc(c)}</text>`);
  });
  const colorFor = (r: number): string => {
    // 1× → green (hue 130), 10× or worse → red (hue 0), log scale.
    const t = Math.min(1, Math.max(0, Math.log10(Math.max(r, 1))));
    return `hsl(${Math.round(130 * (1 - t))}, 65%, ${Math.round(78 - 18 * t)}%)`;
  };
  rows.forEach((row, i) => {
    const y = top + i * cellH;
    body.push(`<text x="${left - 8}" y="${y + cellH / 2 + 4}" text-anchor="end">${esc(row)}</text>`);
    columns.forEach((_, j) => {
      const r = ratio(i, j);
      const x = left + j * cellW;
      const text = r === null || !Number.isFinite(r) ? '—' : r >= 100 ? `${Math.round(r)}×` : `${Number(r.toPrecision(2))}×`;
      body.push(
        `<rect x="${x}" y="${y}" width="${cellW - 2}" height="${cellH - 2}" fill="${r === null || !Number.isFinite(r) ? '#e9ecef' : colorFor(r)}"/>`,
        `<text x="${x + (cellW - 2) / 2}" y="${y + cellH / 2 + 3}" text-anchor="middle" font-size="11">${text}</text>`,
      );
    });
  });
  body.push(
    `<text x="10" y="${height - 12}" fill="#555" font-size="11">Cell: p99 ÷ the oracle's p99 in the same scenario (1× = as good as perfect knowledge; red ≥ 10×).</text>`,
  );
  return svgChart(width, height, title, body);
}
