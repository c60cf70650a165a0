// Drafts save themselves: every change is kept in localStorage at once and sent to the
// server (POST /api/v1/flows, which updates the draft in place) after a short pause.
// The server's answer carries the validation errors shown on the canvas.
import { useCallback, useEffect, useRef, useState } from 'react';
import { api } from './api.js';

const DELAY_MS = 800;
// A save the server could not take (network down, 5xx, busy) is tried again on its own, sooner
// at first, then every 30 s at most, until it goes through or a new edit schedules its own save.
const RETRY_MS = [1000, 2000, 5000, 10000, 30000];
const transient = (e) => e.status === undefined || e.status >= 500 || e.status === 408 || e.status === 429;

export const pendingKey = (key) => `kaskad.pending.${key}`;

export function useAutosave(flowKey, flow, saved) {
  const [status, setStatus] = useState({ state: 'saved', text: 'Saved' });
  const [errors, setErrors] = useState([]);
  const lastSaved = useRef(saved ? JSON.stringify(saved) : null);
  const latest = useRef(flow);
  const timer = useRef(null);
  const chain = useRef(Promise.resolve(null));
  const failures = useRef(0);
  latest.current = flow;

  const save = useCallback(() => {
    clearTimeout(timer.current);
    timer.current = null;
    chain.current = chain.current.then(async () => {
      const doc = latest.current;
      const text = JSON.stringify(doc);
      if (text === lastSaved.current) return { valid: null };
      setStatus({ state: 'saving', text: 'Saving…' });
      try {
        const r = await api('/flows', { method: 'POST', body: text });
        lastSaved.current = text;
        failures.current = 0;
        setErrors(r.errors || []);
        if (JSON.stringify(latest.current) === text) {
          localStorage.removeItem(pendingKey(flowKey));
          setStatus({ state: 'saved', text: `Saved draft v${r.version}` });
        }
        return r;
      } catch (e) {
        // The draft stays in localStorage whatever happens; a reload brings it back too.
        const errs = e.body?.errors;
        if (errs) setErrors(errs);
        if (transient(e) && !timer.current) {
          const wait = RETRY_MS[Math.min(failures.current, RETRY_MS.length - 1)];
          failures.current += 1;
          timer.current = setTimeout(save, wait);
          setStatus({ state: 'error', text: `Not saved: ${e.message} (trying again in ${wait / 1000} s)` });
        } else {
          setStatus({ state: 'error', text: `Not saved: ${e.message}` });
        }
        return { valid: false, errors: errs || [] };
      }
    });
    return chain.current;
  }, [flowKey]);

  useEffect(() => {
    const text = JSON.stringify(flow);
    if (text === lastSaved.current) return;
    localStorage.setItem(pendingKey(flowKey), text);
    setStatus({ state: 'pending', text: 'Unsaved changes…' });
    clearTimeout(timer.current);
    timer.current = setTimeout(save, DELAY_MS);
  }, [flow, flowKey, save]);

  // The errors of what was loaded, before any edit.
  useEffect(() => {
    if (!saved) return;
    api('/flows/validate', { method: 'POST', body: saved }).then((r) => setErrors(r.errors || [])).catch(() => {});
  }, []); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    // Leaving with a save pending: send it now. No "leave the page?" prompt: the draft is already
    // in localStorage and comes back on the next visit anyway.
    const leaving = () => { if (timer.current) save(); };
    window.addEventListener('beforeunload', leaving);
    return () => { window.removeEventListener('beforeunload', leaving); clearTimeout(timer.current); };
  }, [save]);

  /** Save now (if anything is unsaved); resolves with the server's answer. */
  const flush = useCallback(async () => {
    const r = await save();
    if (r && r.valid !== null) return r;
    return { valid: errors.length === 0, errors };
  }, [save, errors]);

  return { status, errors, flush };
}
