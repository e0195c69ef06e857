// Minimal SVG charts for docs/benchmarks.md: lines over x, and histograms.
export interface Series {
  name: string;
  points: Array<[number, number]>;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

export function lineChart(o: { title: string; x: string; y: string; series: Series[]; logY?: boolean }): string {
  const W = 640;
  const H = 360;
  const L = 64;
  const R = 150;
  const T = 36;
  const B = 48;
  const all = o.series.flatMap((s) => s.points);
  const fy = (v: number) => (o.logY ? Math.log10(Math.max(v, 1e-9)) : v);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => fy(p[1]));
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs) === x0 ? x0 + 1 : Math.max(...xs);
  const y0 = Math.min(0, ...ys);
  const y1 = Math.max(...ys) === y0 ? y0 + 1 : Math.max(...ys);
  const px = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y: number) => H - B - ((fy(y) - y0) / (y1 - y0)) * (H - T - B);
  const ticks = (a: number, b: number) => Array.from({ length: 5 }, (_, i) => a + ((b - a) * i) / 4);
  const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(1) : v.toFixed(3));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<title>${esc(o.title)}</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(o.title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">${esc(o.x)}</text>`,
    `<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(T + H - B) / 2})">${esc(o.y)}</text>`,
  ];
  for (const t of ticks(x0, x1))
    parts.push(`<text x="${px(t)}" y="${H - B + 16}" text-anchor="middle">${fmt(t)}</text>`);
  for (const t of ticks(y0, y1)) {
    const v = o.logY ? 10 ** t : t;
    parts.push(
      `<text x="${L - 6}" y="${py(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
      `<line x1="${L}" y1="${py(v)}" x2="${W - R}" y2="${py(v)}" stroke="#eee"/>`,
    );
  }
  o.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(" ");
    parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="2"/>`);
    for (const p of s.points)
      parts.push(`<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="2.5" fill="${c}"/>`);
    parts.push(
      `<rect x="${W - R + 12}" y="${T + i * 18}" width="12" height="3" fill="${c}"/>`,
      `<text x="${W - R + 30}" y="${T + i * 18 + 5}">${esc(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}

export function histogram(o: { title: string; x: string; values: number[]; bins?: number }): string {
  const n = o.bins ?? 20;
  const lo = Math.min(...o.values);
  const hi = Math.max(...o.values) === lo ? lo + 1 : Math.max(...o.values);
  const counts = new Array<number>(n).fill(0);
  for (const v of o.values) {
    const i = Math.min(n - 1, Math.floor(((v - lo) / (hi - lo)) * n));
    counts[i] = (counts[i] ?? 0) + 1;
  }
  return lineChart({
    title: o.title,
    x: o.x,
    y: "count",
    series: [{ name: "count", points: counts.map((c, i) => [lo + ((i + 0.5) * (hi - lo)) / n, c]) }],
  });
}
