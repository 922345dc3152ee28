/**
 * A QR code drawn in the page from `qrcode`'s modules (one SVG path, no data: URL): a phone's
 * WireGuard app scans the peer's configuration from it. Everything happens here; the text goes
 * nowhere. `qrcode` is loaded when the first code is drawn, not with the panel.
 */
import { useEffect, useState } from 'preact/hooks';

interface Modules {
  size: number;
  data: ArrayLike<number | boolean>;
}

export function Qr({ text, label }: { text: string; label: string }) {
  const [modules, setModules] = useState<Modules | null>(null);
  useEffect(() => {
    let live = true;
    void import('qrcode').then((m) => {
      if (live) setModules(m.default.create(text, { errorCorrectionLevel: 'M' }).modules);
    });
    return () => {
      live = false;
    };
  }, [text]);
  if (!modules) return <p aria-busy="true">Drawing the QR code…</p>;
  const { size, data } = modules;
  const margin = 2;
  let d = '';
  for (let row = 0; row < size; row++) {
    let col = 0;
    while (col < size) {
      if (!data[row * size + col]) {
        col++;
        continue;
      }
      const start = col;
      while (col < size && data[row * size + col]) col++;
      d += `M${start + margin} ${row + margin}h${col - start}v1h${start - col}z`;
    }
  }
  const full = size + 2 * margin;
  return (
    <svg class="qr" viewBox={`0 0 ${full} ${full}`} role="img" aria-label={label} data-testid="peer-qr" shape-rendering="crispEdges">
      <rect width={full} height={full} fill="#fff" />
      <path d={d} fill="#000" />
    </svg>
  );
}
