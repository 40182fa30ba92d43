// Layered left-to-right layout of a call graph (a small Sugiyama: cycle breaking, longest-path
// layers, barycentre ordering). Pure: nodes and edges in, positions out.

/**
 * @param {string[]} ids node ids
 * @param {{source: string, target: string, weight?: number}[]} edges
 * @returns {{layer: Map<string, number>, order: string[][], back: Set<number>}}
 *   layer per node, node ids per layer in drawing order, indexes of edges drawn against the flow.
 */
export function layered(ids, edges, weightOf = () => 0) {
  const idset = new Set(ids);
  const out = new Map(ids.map((id) => [id, []]));
  const indeg = new Map(ids.map((id) => [id, 0]));
  edges.forEach((e, i) => {
    if (!idset.has(e.source) || !idset.has(e.target) || e.source === e.target) return;
    out.get(e.source).push({ to: e.target, i });
    indeg.set(e.target, indeg.get(e.target) + 1);
  });
  // 1. Break cycles: DFS from the roots (most traffic first); an edge to a node on the stack is "back".
  const back = new Set();
  const state = new Map(); // 1 = on stack, 2 = done
  const byWeight = (a, b) => weightOf(b) - weightOf(a) || (a < b ? -1 : 1);
  const roots = ids.filter((id) => indeg.get(id) === 0).sort(byWeight);
  const rest = ids.filter((id) => indeg.get(id) !== 0).sort(byWeight);
  for (const start of [...roots, ...rest]) {
    if (state.has(start)) continue;
    const stack = [[start, 0]];
    state.set(start, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [v, k] = top;
      const succ = out.get(v);
      if (k >= succ.length) {
        state.set(v, 2);
        stack.pop();
        continue;
      }
      top[1] = k + 1;
      const { to, i } = succ[k];
      const st = state.get(to);
      if (st === 1) back.add(i);
      else if (!st) {
        state.set(to, 1);
        stack.push([to, 0]);
      }
    }
  }
  // 2. Longest path from the sources over the acyclic edges (Kahn's order).
  const fwd = new Map(ids.map((id) => [id, []]));
  const deg = new Map(ids.map((id) => [id, 0]));
  edges.forEach((e, i) => {
    if (back.has(i) || !idset.has(e.source) || !idset.has(e.target) || e.source === e.target) return;
    fwd.get(e.source).push(e.target);
    deg.set(e.target, deg.get(e.target) + 1);
  });
  const layer = new Map(ids.map((id) => [id, 0]));
  const queue = ids.filter((id) => deg.get(id) === 0);
  for (let qi = 0; qi < queue.length; qi++) {
    const v = queue[qi];
    for (const w of fwd.get(v)) {
      layer.set(w, Math.max(layer.get(w), layer.get(v) + 1));
      deg.set(w, deg.get(w) - 1);
      if (deg.get(w) === 0) queue.push(w);
    }
  }
  // Pull a node with no callers next to its first callee (a lone cron job sits beside what it calls).
  for (const id of ids) {
    if (indeg.get(id) === 0 && fwd.get(id).length) {
      const minChild = Math.min(...fwd.get(id).map((w) => layer.get(w)));
      layer.set(id, Math.max(layer.get(id), minChild - 1));
    }
  }
  // 3. Order each layer by the barycentre of its neighbours, sweeping down and up a few times.
  const nLayers = Math.max(0, ...layer.values()) + 1;
  const order = Array.from({ length: nLayers }, () => []);
  for (const id of [...ids].sort(byWeight)) order[layer.get(id)].push(id);
  const preds = new Map(ids.map((id) => [id, []]));
  const succs = new Map(ids.map((id) => [id, []]));
  edges.forEach((e) => {
    if (!idset.has(e.source) || !idset.has(e.target) || e.source === e.target) return;
    succs.get(e.source).push(e.target);
    preds.get(e.target).push(e.source);
  });
  const pos = new Map();
  const index = () => order.forEach((l) => l.forEach((id, i) => pos.set(id, i / Math.max(l.length - 1, 1))));
  index();
  const sweep = (l, neighbours) => {
    const bary = new Map();
    order[l].forEach((id, i) => {
      const ns = neighbours.get(id).filter((n) => pos.has(n) && layer.get(n) !== l);
      bary.set(id, ns.length ? ns.reduce((a, n) => a + pos.get(n), 0) / ns.length : i / Math.max(order[l].length - 1, 1));
    });
    order[l].sort((a, b) => bary.get(a) - bary.get(b));
    order[l].forEach((id, i) => pos.set(id, i / Math.max(order[l].length - 1, 1)));
  };
  for (let it = 0; it < 4; it++) {
    for (let l = 1; l < nLayers; l++) sweep(l, preds);
    for (let l = nLayers - 2; l >= 0; l--) sweep(l, succs);
  }
  return { layer, order, back };
}

/** Pixel positions (top-left of each node box) for a layered result. */
export function place(result, opts) {
  const { colW, rowH, nodeW, nodeH } = opts;
  const tallest = Math.max(1, ...result.order.map((l) => l.length));
  const height = tallest * rowH;
  const xy = new Map();
  result.order.forEach((ids, l) => {
    const offset = (height - ids.length * rowH) / 2;
    ids.forEach((id, i) => xy.set(id, { x: l * colW, y: offset + i * rowH + (rowH - nodeH) / 2 }));
  });
  return { xy, width: Math.max(1, result.order.length) * colW - (colW - nodeW), height };
}
