// Undo/redo over whole flow documents. Edits tagged alike in a row (typing in one field)
// fold into one step, so undo goes back a field, not a keystroke.

const LIMIT = 200;

export const emptyHistory = (flow) => ({ past: [], present: flow, future: [], tag: null });

export function commit(h, flow, tag = null) {
  if (flow === h.present) return h;
  if (tag && tag === h.tag) return { ...h, present: flow, future: [] };
  return { past: [...h.past, h.present].slice(-LIMIT), present: flow, future: [], tag };
}

export function undo(h) {
  if (!h.past.length) return h;
  return { past: h.past.slice(0, -1), present: h.past[h.past.length - 1], future: [h.present, ...h.future], tag: null };
}

export function redo(h) {
  if (!h.future.length) return h;
  return { past: [...h.past, h.present], present: h.future[0], future: h.future.slice(1), tag: null };
}
