// The throughput chart: messages/s per cell for the ceiling (a), baseline (b) and relaybox, median
// bars with min–max whiskers on a log scale, as a standalone SVG (rendered by the forge as an image).
export interface ChartSeries {
  name: string;
  color: string;
  /** Per cell: median, min, max (NaN when missing). */
  values: Array<{ median: number; min: number; max: number }>;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function throughputChart(title: string, cells: string[], series: ChartSeries[]): string {
  const W = 820;
  const H = 420;
  const m = { left: 70, right: 20, top: 50, bottom: 70 };
  const plotW = W - m.left - m.right;
  const plotH = H - m.top - m.bottom;
  const all = series.flatMap((s) => s.values.flatMap((v) => [v.min, v.max, v.median])).filter((v) => Number.isFinite(v) && v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all, 10)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all, 100)));
  const y = (v: number) => m.top + plotH - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
  const groupW = plotW / cells.length;
  const barW = Math.min(36, (groupW * 0.8) / series.length);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  for (let e = Math.log10(lo); e <= Math.log10(hi); e++) {
    for (const k of [1, 2, 5]) {
      const v = k * 10 ** e;
      if (v > hi) break;
      const yy = y(v).toFixed(1);
      out.push(`<line x1="${m.left}" x2="${W - m.right}" y1="${yy}" y2="${yy}" stroke="${k === 1 ? '#bbbbbb' : '#e5e5e5'}"/>`);
      out.push(`<text x="${m.left - 6}" y="${Number(yy) + 4}" text-anchor="end" fill="#444">${v >= 1000 ? `${v / 1000}k` : v}</text>`);
    }
  }
  out.push(`<text transform="translate(18 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle">messages/s (log scale)</text>`);
  cells.forEach((cell, i) => {
    const x0 = m.left + i * groupW + (groupW - barW * series.length) / 2;
    series.forEach((s, j) => {
      const v = s.values[i];
      if (!v || !Number.isFinite(v.median)) return;
      const x = x0 + j * barW;
      const top = y(v.median);
      out.push(`<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(barW - 3).toFixed(1)}" height="${(m.top + plotH - top).toFixed(1)}" fill="${s.color}"><title>${esc(`${s.name}, ${cell}: median ${v.median.toFixed(1)} msg/s (min ${v.min.toFixed(1)}, max ${v.max.toFixed(1)})`)}</title></rect>`);
      const cx = (x + (barW - 3) / 2).toFixed(1);
      if (Number.isFinite(v.min) && Number.isFinite(v.max)) {
        out.push(`<line x1="${cx}" x2="${cx}" y1="${y(v.min).toFixed(1)}" y2="${y(v.max).toFixed(1)}" stroke="#222" stroke-width="1.2"/>`);
        for (const w of [v.min, v.max]) out.push(`<line x1="${(Number(cx) - 4).toFixed(1)}" x2="${(Number(cx) + 4).toFixed(1)}" y1="${y(w).toFixed(1)}" y2="${y(w).toFixed(1)}" stroke="#222" stroke-width="1.2"/>`);
      }
      out.push(`<text x="${cx}" y="${(y(v.max) - 4).toFixed(1)}" text-anchor="middle" font-size="10" fill="#222">${v.median >= 100 ? v.median.toFixed(0) : v.median.toFixed(1)}</text>`);
    });
    out.push(`<text x="${(m.left + i * groupW + groupW / 2).toFixed(1)}" y="${m.top + plotH + 18}" text-anchor="middle">${esc(cell)}</text>`);
  });
  out.push(`<text x="${m.left + plotW / 2}" y="${m.top + plotH + 36}" text-anchor="middle" fill="#444">clients × messages per connection</text>`);
  let lx = m.left;
  for (const s of series) {
    out.push(`<rect x="${lx}" y="${H - 22}" width="12" height="12" fill="${s.color}"/><text x="${lx + 16}" y="${H - 12}">${esc(s.name)}</text>`);
    lx += 24 + s.name.length * 7;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
