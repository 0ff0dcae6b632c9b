// Plane geometry for text boxes: convex hull, minimum-area rotated rectangle (what OpenCV's minAreaRect gives
// PaddleOCR), the DB "unclip" expansion of such a rectangle, and PaddleOCR's corner order.
export type Point = [x: number, y: number];
/** Four corners: top-left, top-right, bottom-right, bottom-left as PaddleOCR orders them. */
export type Quad = [Point, Point, Point, Point];

/** A rotated rectangle: unit axes u and v and the extent of the shape along each. */
export interface RotatedRect {
  u: Point;
  v: Point;
  minU: number;
  maxU: number;
  minV: number;
  maxV: number;
}

/** Andrew's monotone chain; collinear points are dropped. Returns the hull counter-clockwise (y down: clockwise). */
export function convexHull(points: Point[]): Point[] {
  const pts = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (pts.length < 3) return pts;
  const cross = (o: Point, a: Point, b: Point) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: Point[] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, p) <= 0) upper.pop();
    upper.push(p);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

/** The smallest-area enclosing rectangle has a side on a hull edge (rotating calipers); hulls here are small. */
export function minAreaRect(hull: Point[]): RotatedRect {
  if (hull.length === 0) throw new Error("minAreaRect needs at least one point");
  let best: RotatedRect | null = null;
  let bestArea = Infinity;
  const edges = hull.length === 1 ? 1 : hull.length;
  for (let i = 0; i < edges; i++) {
    const a = hull[i]!;
    const b = hull[(i + 1) % hull.length]!;
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    const u: Point = len > 0 ? [(b[0] - a[0]) / len, (b[1] - a[1]) / len] : [1, 0];
    const v: Point = [-u[1], u[0]];
    let minU = Infinity;
    let maxU = -Infinity;
    let minV = Infinity;
    let maxV = -Infinity;
    for (const p of hull) {
      const pu = p[0] * u[0] + p[1] * u[1];
      const pv = p[0] * v[0] + p[1] * v[1];
      if (pu < minU) minU = pu;
      if (pu > maxU) maxU = pu;
      if (pv < minV) minV = pv;
      if (pv > maxV) maxV = pv;
    }
    const area = (maxU - minU) * (maxV - minV);
    if (area < bestArea - 1e-9) {
      bestArea = area;
      best = { u, v, minU, maxU, minV, maxV };
    }
  }
  return best!;
}

export function rectSides(r: RotatedRect): { width: number; height: number } {
  return { width: r.maxU - r.minU, height: r.maxV - r.minV };
}

/**
 * DB's unclip: offset the shrunk text kernel outwards by area * ratio / perimeter (PaddleOCR does it with
 * pyclipper's round-joined offset, then takes the min-area rectangle). For a rectangle that rectangle is exactly
 * the original grown by the distance on every side: the rounded corners never reach past the grown sides.
 */
export function unclipRect(r: RotatedRect, ratio: number): RotatedRect {
  const { width, height } = rectSides(r);
  const perimeter = 2 * (width + height);
  const d = perimeter > 0 ? (width * height * ratio) / perimeter : 0;
  return { ...r, minU: r.minU - d, maxU: r.maxU + d, minV: r.minV - d, maxV: r.maxV + d };
}

/** Corners in PaddleOCR's get_mini_boxes order: of the two leftmost, the upper is first and the lower last. */
export function rectCorners(r: RotatedRect): Quad {
  const at = (pu: number, pv: number): Point => [pu * r.u[0] + pv * r.v[0], pu * r.u[1] + pv * r.v[1]];
  return orderCorners([at(r.minU, r.minV), at(r.maxU, r.minV), at(r.maxU, r.maxV), at(r.minU, r.maxV)]);
}

export function orderCorners(points: Point[]): Quad {
  const p = [...points].sort((a, b) => a[0] - b[0]);
  const [tl, bl] = p[1]![1] > p[0]![1] ? [p[0]!, p[1]!] : [p[1]!, p[0]!];
  const [tr, br] = p[3]![1] > p[2]![1] ? [p[2]!, p[3]!] : [p[3]!, p[2]!];
  return [tl, tr, br, bl];
}

export function distance(a: Point, b: Point): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

/**
 * Mean of `map` (width x height, row-major) over the pixels whose centres lie in the convex quad: DB's "fast" box
 * score, which rejects boxes whose kernel is only weakly text.
 */
export function meanInQuad(map: Float32Array, width: number, height: number, quad: Quad): number {
  const xs = quad.map((p) => p[0]);
  const ys = quad.map((p) => p[1]);
  const x0 = clamp(Math.floor(Math.min(...xs)), 0, width - 1);
  const x1 = clamp(Math.ceil(Math.max(...xs)), 0, width - 1);
  const y0 = clamp(Math.floor(Math.min(...ys)), 0, height - 1);
  const y1 = clamp(Math.ceil(Math.max(...ys)), 0, height - 1);
  // Sign of the quad's winding, so "inside" is the same side of every edge whichever way the corners go.
  let area2 = 0;
  for (let i = 0; i < 4; i++) {
    const a = quad[i]!;
    const b = quad[(i + 1) % 4]!;
    area2 += a[0] * b[1] - b[0] * a[1];
  }
  const sign = area2 >= 0 ? 1 : -1;
  let sum = 0;
  let n = 0;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      let inside = true;
      for (let i = 0; i < 4 && inside; i++) {
        const a = quad[i]!;
        const b = quad[(i + 1) % 4]!;
        const cross = (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
        if (sign * cross < -1e-6) inside = false;
      }
      if (inside) {
        sum += map[y * width + x]!;
        n++;
      }
    }
  }
  return n > 0 ? sum / n : 0;
}

export function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
