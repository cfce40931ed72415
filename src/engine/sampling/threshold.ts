/*
 * Cut-off values for top-k and top-p without sorting the vocabulary. A full sort of a 152k row costs tens of
 * milliseconds in JS and runs for every draft and target row of every step; both filters only need one value (the
 * k-th largest logit, the probability at which the descending mass reaches p), which selection finds in expected
 * linear time. Both use three-way partitions because real rows are full of duplicates (-Infinity masks, probabilities
 * that underflowed to 0), on which two-way quickselect degrades to quadratic time.
 *
 * Scratch buffers live at module level and only grow: toProbs runs synchronously, so they are never shared by two
 * calls at once, and a worker's vocabulary size is fixed, so they are allocated once.
 */

let valueScratch = new Float32Array(0);
let indexScratch = new Int32Array(0);

/** Below this many candidates an insertion sort beats further partitioning. */
const SMALL = 16;

function median3(a: number, b: number, c: number): number {
  if (a < b) return b < c ? b : a < c ? c : a;
  return a < c ? a : b < c ? c : b;
}

/** Up to this k, top-k keeps a size-k heap instead of running quickselect (see kthLargest). */
const HEAP_MAX_K = 1024;

/** The k-th largest (1-based) of `values`, which is left untouched; 1 <= k <= values.length. */
export function kthLargest(values: Float32Array, k: number): number {
  // Typical k (20–100) against a 152k row: a min-heap of the k best costs one comparison per element for all but the
  // few that beat the current k-th, about 10x cheaper than partitioning a copy of the whole row. Its worst case
  // (ascending rows, n log k) is not how logits look; large k goes to quickselect, whose cost does not depend on k.
  return k <= HEAP_MAX_K ? kthLargestByHeap(values, k) : kthLargestBySelect(values, k);
}

function kthLargestByHeap(values: Float32Array, k: number): number {
  if (valueScratch.length < k) valueScratch = new Float32Array(Math.max(k, HEAP_MAX_K));
  const h = valueScratch;
  for (let i = 0; i < k; i++) h[i] = values[i]!;
  for (let i = (k >>> 1) - 1; i >= 0; i--) siftDown(h, k, i, h[i]!);
  let min = h[0]!;
  for (let i = k; i < values.length; i++) {
    const x = values[i]!;
    if (x > min) {
      siftDown(h, k, 0, x);
      min = h[0]!;
    }
  }
  return min;
}

/** Places x at position i of the min-heap h[0, size) and restores the heap below it. */
function siftDown(h: Float32Array, size: number, i: number, x: number): void {
  for (;;) {
    let c = 2 * i + 1;
    if (c >= size) break;
    if (c + 1 < size && h[c + 1]! < h[c]!) c++;
    if (h[c]! >= x) break;
    h[i] = h[c]!;
    i = c;
  }
  h[i] = x;
}

function kthLargestBySelect(values: Float32Array, k: number): number {
  const n = values.length;
  if (valueScratch.length < n) valueScratch = new Float32Array(n);
  const v = valueScratch;
  v.set(values);
  const target = k - 1; // position in descending order
  let lo = 0;
  let hi = n; // exclusive
  while (hi - lo > SMALL) {
    const pivot = median3(v[lo]!, v[(lo + hi) >>> 1]!, v[hi - 1]!);
    // Dutch flag, descending: [lo, gt) > pivot, [gt, i) == pivot, [lt, hi) < pivot.
    let gt = lo;
    let i = lo;
    let lt = hi;
    while (i < lt) {
      const x = v[i]!;
      if (x > pivot) {
        v[i] = v[gt]!;
        v[gt++] = x;
        i++;
      } else if (x < pivot) {
        v[i] = v[--lt]!;
        v[lt] = x;
      } else i++;
    }
    if (target < gt) hi = gt;
    else if (target >= lt) lo = lt;
    else return pivot;
  }
  // Insertion sort of the short remainder, descending.
  for (let i = lo + 1; i < hi; i++) {
    const x = v[i]!;
    let j = i - 1;
    while (j >= lo && v[j]! < x) {
      v[j + 1] = v[j]!;
      j--;
    }
    v[j + 1] = x;
  }
  return v[target]!;
}

/**
 * The largest value t such that the entries of `weights` that are >= t sum to at least `need`: the top-p cut-off
 * (need = p · total, total = the sum of the positive weights). Returned as a threshold, not a count, so every token
 * tied with the last one needed is kept, which makes the result independent of token order. If rounding left the
 * whole positive mass short of `need`, returns Number.MIN_VALUE, i.e. "keep everything with mass".
 */
export function massThreshold(weights: Float32Array, total: number, need: number): number {
  const n = weights.length;
  if (indexScratch.length < n) indexScratch = new Int32Array(n);
  const idx = indexScratch;
  // Weights below (total − need) / n can never be kept: all of them together hold less than total − need, so the
  // weights above them already reach `need` and t lies above them. On real (peaked) rows this drops most of the
  // vocabulary before the partitioning starts; on a flat row it drops nothing, and nothing is lost.
  const floor = Math.max((total - need) / n, Number.MIN_VALUE);
  let count = 0;
  let top = 0;
  for (let i = 0; i < n; i++) {
    const w = weights[i]!;
    if (w >= floor) {
      idx[count++] = i;
      if (w > top) top = w;
    }
  }
  if (need <= 0) return top;

  let lo = 0;
  let hi = count;
  let above = 0; // mass of the candidates already known to lie above [lo, hi), all of them kept
  while (hi - lo > SMALL) {
    const pivot = median3(weights[idx[lo]!]!, weights[idx[(lo + hi) >>> 1]!]!, weights[idx[hi - 1]!]!);
    let gt = lo;
    let i = lo;
    let lt = hi;
    let gtMass = 0;
    let eqMass = 0;
    while (i < lt) {
      const t = idx[i]!;
      const w = weights[t]!;
      if (w > pivot) {
        idx[i] = idx[gt]!;
        idx[gt++] = t;
        i++;
        gtMass += w;
      } else if (w < pivot) {
        idx[i] = idx[--lt]!;
        idx[lt] = t;
      } else {
        i++;
        eqMass += w;
      }
    }
    // `above` < need holds on entry, so when the larger part alone suffices it is non-empty and we shrink into it.
    if (above + gtMass >= need) hi = gt;
    else if (above + gtMass + eqMass >= need) return pivot;
    else {
      above += gtMass + eqMass;
      lo = lt;
    }
  }
  for (let i = lo + 1; i < hi; i++) {
    const t = idx[i]!;
    const w = weights[t]!;
    let j = i - 1;
    while (j >= lo && weights[idx[j]!]! < w) {
      idx[j + 1] = idx[j]!;
      j--;
    }
    idx[j + 1] = t;
  }
  for (let i = lo; i < hi; i++) {
    const w = weights[idx[i]!]!;
    above += w;
    if (above >= need) return w;
  }
  return Number.MIN_VALUE;
}
