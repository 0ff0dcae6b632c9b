/** Adjusted Rand index (Hubert & Arabie) between two labelings of the same points; every label, −1 included, is a class. */
export function adjustedRandIndex(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  if (b.length !== n) throw new Error("labelings differ in length");
  if (n < 2) return 1;
  const pairs = new Map<string, number>(), rowsA = new Map<number, number>(), colsB = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const key = `${a[i]},${b[i]}`;
    pairs.set(key, (pairs.get(key) ?? 0) + 1);
    rowsA.set(a[i]!, (rowsA.get(a[i]!) ?? 0) + 1);
    colsB.set(b[i]!, (colsB.get(b[i]!) ?? 0) + 1);
  }
  const choose2 = (x: number): number => (x * (x - 1)) / 2;
  let index = 0, sumA = 0, sumB = 0;
  for (const c of pairs.values()) index += choose2(c);
  for (const c of rowsA.values()) sumA += choose2(c);
  for (const c of colsB.values()) sumB += choose2(c);
  const expected = (sumA * sumB) / choose2(n);
  const max = (sumA + sumB) / 2;
  if (max === expected) return 1;
  return (index - expected) / (max - expected);
}
