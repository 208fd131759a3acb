// A line diff for "review before apply": [op, line] with op '+', '-' or ' ' (context, 2 lines around changes).
// Common head and tail are cut first; the middle is an LCS table, which is fine for configuration files
// (a few hundred changed lines); past MAX cells the middle is shown as removed-then-added.
const MAX = 4e6;
const CONTEXT = 2;

export function lineDiff(before, after) {
  const a = before.split('\n'), b = after.split('\n');
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const x = a.slice(head, a.length - tail), y = b.slice(head, b.length - tail);
  if (!x.length && !y.length) return [];
  let mid = [];
  if (x.length * y.length > MAX) {
    mid = [...x.map((l) => ['-', l]), ...y.map((l) => ['+', l])];
  } else {
    const n = x.length, m = y.length, w = m + 1;
    const t = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) {
      t[i * w + j] = x[i] === y[j] ? t[(i + 1) * w + j + 1] + 1 : Math.max(t[(i + 1) * w + j], t[i * w + j + 1]);
    }
    let i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && x[i] === y[j]) { mid.push([' ', x[i]]); i++; j++; }
      else if (j < m && (i === n || t[i * w + j + 1] >= t[(i + 1) * w + j])) mid.push(['+', y[j++]]);
      else mid.push(['-', x[i++]]);
    }
  }
  const before_ = a.slice(Math.max(0, head - CONTEXT), head).map((l) => [' ', l]);
  const after_ = a.slice(a.length - tail, a.length - tail + CONTEXT).map((l) => [' ', l]);
  return [...before_, ...mid, ...after_];
}
