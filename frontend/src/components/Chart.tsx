// A small SVG line chart: enough for a few hundred points, no chart library needed.

interface Props {
  title: string;
  points: [number, number | null][];
  format: (value: number) => string;
  source?: string;
}

const W = 320;
const H = 120;
const PAD = 4;

function path(points: [number, number][], x: (t: number) => number, y: (v: number) => number): string {
  return points.map(([t, v], i) => `${i === 0 ? "M" : "L"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
}

export function Chart({ title, points, format, source }: Props) {
  const known = points.filter((p): p is [number, number] => p[1] !== null);
  const last = known.length ? known[known.length - 1][1] : null;
  let body = <text x={W / 2} y={H / 2} textAnchor="middle" className="chart-empty">collecting…</text>;
  if (known.length >= 2) {
    const t0 = known[0][0];
    const t1 = known[known.length - 1][0];
    const max = Math.max(...known.map((p) => p[1]), 1e-9);
    const x = (t: number) => PAD + ((t - t0) / Math.max(t1 - t0, 1)) * (W - 2 * PAD);
    const y = (v: number) => H - PAD - (v / max) * (H - 2 * PAD);
    const line = path(known, x, y);
    body = (
      <>
        <path d={`${line} L${x(t1).toFixed(1)},${H - PAD} L${x(t0).toFixed(1)},${H - PAD} Z`} className="chart-area" />
        <path d={line} className="chart-line" />
        <text x={W - PAD} y={12} textAnchor="end" className="chart-max">max {format(max)}</text>
      </>
    );
  }
  return (
    <figure className="chart" data-testid={`chart-${title}`}>
      <figcaption>
        <span>{title}</span>
        <strong>{last === null ? "–" : format(last)}</strong>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={title}>
        {body}
      </svg>
      {source && <small className="muted">source: {source}</small>}
    </figure>
  );
}
