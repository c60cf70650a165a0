// A form rendered from a JSON Schema (as msgspec emits it): objects, strings with
// pattern, enums, numbers, booleans, arrays, unions (anyOf/oneOf, tagged by "kind"),
// $ref into $defs. Every input carries data-path (e.g. "message.subject") so tests and
// validation messages can find it. `ctx.hidden(path)` hides fields edited elsewhere
// (ports are edited on the canvas); `ctx.override(path, schema)` swaps in a schema
// (a send node's message takes its channel's message schema).
import { useState } from 'react';
import { describe, defaultFor, optionIndex, optionTag, setKey, stringProblem, numberProblem } from './schema.js';

const LONG_TEXT = new Set(['html', 'text', 'description', 'body']);

const pathText = (path) => path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '');

function Label({ name, schema, required }) {
  // The field's name comes first; a title adds what the name does not say ("html · HTML body").
  // Struct titles (EmailMessageSpec) name a type, not the field, and are left out.
  const title = schema.title && schema.type !== 'object' && schema.title.toLowerCase() !== String(name).replace(/_/g, ' ') ? schema.title : null;
  return (
    <span className="field-label" title={schema.description || ''}>
      {String(name)}{required ? ' *' : ''}{title && <span className="field-title"> · {title}</span>}
    </span>
  );
}

export function SchemaField({ schema, root, value, onChange, path = [], ctx = {}, name, required }) {
  const override = ctx.override?.(path, value);
  if (override) { schema = override; root = override; }
  const d = describe(schema, root);
  const s = d.schema;
  const dp = pathText(path);
  const common = { 'data-path': dp, id: `f-${dp}` };
  const label = name !== undefined ? <Label name={name} schema={s} required={required} /> : null;
  const clearable = d.nullable || !required;
  const empty = value === undefined || value === null;

  switch (d.type) {
    case 'const':
      return null;
    case 'object': {
      if (empty && d.nullable && path.length) {
        return (
          <div className="field">
            {label}
            <button type="button" className="small" data-path={dp} data-action="add" onClick={() => onChange(defaultFor(s, root))}>+ set</button>
          </div>
        );
      }
      const props = s.properties || {};
      const req = new Set(s.required || []);
      return (
        <fieldset className={path.length ? 'field object' : 'object root'} data-path={dp}>
          {path.length > 0 && (
            <legend>
              {label}
              {d.nullable && <button type="button" className="small link" data-action="clear" onClick={() => onChange(undefined)}>remove</button>}
            </legend>
          )}
          {Object.keys(props).map((key) => (ctx.hidden?.([...path, key]) ? null : (
            <SchemaField key={key} name={key} required={req.has(key)} schema={props[key]} root={root}
              value={value?.[key]} path={[...path, key]} ctx={ctx}
              onChange={(v) => onChange(setKey(value, key, v))} />
          )))}
        </fieldset>
      );
    }
    case 'union': {
      const options = d.options;
      const idx = empty ? -1 : optionIndex(options, value);
      const names = options.map((o, i) => optionTag(o)?.value ?? o.title ?? o.type ?? `option ${i + 1}`);
      return (
        <div className="field union">
          {label}
          <select {...common} data-role="union" value={idx} onChange={(e) => {
            const i = Number(e.target.value);
            onChange(i < 0 ? undefined : defaultFor(options[i], root));
          }}>
            {(clearable || idx < 0) && <option value={-1}>—</option>}
            {names.map((n, i) => <option key={i} value={i}>{String(n)}</option>)}
          </select>
          {idx >= 0 && Object.values(options[idx].properties || { x: {} }).some((p) => p.enum?.length !== 1) && (
            <div className="union-body">
              <SchemaField schema={options[idx]} root={root} value={value} path={path} ctx={ctx} onChange={onChange} required />
            </div>
          )}
        </div>
      );
    }
    case 'enum':
      return (
        <label className="field">
          {label}
          <select {...common} value={empty ? '' : String(value)} onChange={(e) => {
            const raw = e.target.value;
            onChange(raw === '' ? undefined : s.enum.find((v) => String(v) === raw));
          }}>
            {(clearable || empty) && <option value="">{s.default !== undefined && s.default !== null ? `— (default ${s.default})` : "—"}</option>}
            {s.enum.map((v) => <option key={String(v)} value={String(v)}>{String(v)}</option>)}
          </select>
        </label>
      );
    case 'string': {
      const problem = stringProblem(s, value ?? '');
      const long = LONG_TEXT.has(name) || (s.title || '').toLowerCase().includes('body');
      const Input = long ? 'textarea' : 'input';
      return (
        <label className={`field${problem ? ' invalid' : ''}`}>
          {label}
          <Input {...common} type={long ? undefined : 'text'} value={value ?? ''} rows={long ? 4 : undefined}
            placeholder={s.default ?? ''} pattern={long ? undefined : s.pattern?.replace(/\(\?P</g, '(?<')}
            onChange={(e) => onChange(e.target.value === '' && clearable ? undefined : e.target.value)} />
          {problem && <span className="hint error">{problem}</span>}
        </label>
      );
    }
    case 'number': case 'integer':
      return <NumberInput s={s} value={value} onChange={onChange} common={common} label={label} clearable={clearable} />;
    case 'boolean':
      return (
        <label className="field check">
          <input {...common} type="checkbox" checked={value ?? s.default ?? false}
            onChange={(e) => onChange(e.target.checked === (s.default ?? false) && !required ? undefined : e.target.checked)} />
          {label}
        </label>
      );
    case 'array':
      return <ArrayField s={s} root={root} value={value} onChange={onChange} path={path} ctx={ctx} label={label} dp={dp} />;
    default:
      return <JsonInput value={value} onChange={onChange} common={common} label={label} />;
  }
}

function NumberInput({ s, value, onChange, common, label, clearable }) {
  const problem = numberProblem(s, value);
  return (
    <label className={`field${problem ? ' invalid' : ''}`}>
      {label}
      <input {...common} type="number" value={value ?? ''} step={s.type === 'integer' ? 1 : 'any'}
        min={s.minimum} max={s.maximum}
        onChange={(e) => onChange(e.target.value === '' ? (clearable ? undefined : 0) : Number(e.target.value))} />
      {problem && <span className="hint error">{problem}</span>}
    </label>
  );
}

function ArrayField({ s, root, value, onChange, path, ctx, label, dp }) {
  const items = Array.isArray(value) ? value : [];
  const itemSchema = describe(s.items || {}, root);
  if (itemSchema.type === 'enum') {
    // A set of choices (weekdays, engagement statuses): one checkbox each.
    return (
      <div className="field" data-path={dp}>
        {label}
        <div className="checks">
          {itemSchema.schema.enum.map((v) => (
            <label key={String(v)} className="check">
              <input type="checkbox" data-path={`${dp}.${v}`} checked={items.includes(v)}
                onChange={(e) => onChange(e.target.checked ? [...items, v] : items.filter((x) => x !== v))} />
              {String(v)}
            </label>
          ))}
        </div>
      </div>
    );
  }
  const put = (i, v) => onChange(items.map((x, j) => (j === i ? v : x)));
  return (
    <div className="field array" data-path={dp}>
      {label}
      {items.map((item, i) => (
        <div className="array-item" key={i}>
          <SchemaField schema={s.items || {}} root={root} value={item} path={[...path, i]} ctx={ctx} required
            onChange={(v) => (v === undefined ? onChange(items.filter((_, j) => j !== i)) : put(i, v))} />
          <button type="button" className="small link" data-action="remove" data-path={`${dp}[${i}]`}
            onClick={() => onChange(items.filter((_, j) => j !== i))}>remove</button>
        </div>
      ))}
      <button type="button" className="small" data-action="add" data-path={dp}
        onClick={() => onChange([...items, defaultFor(s.items || {}, root)])}>+ add</button>
    </div>
  );
}

/** A free-form value (a map, "any"): edited as JSON, applied when it parses. */
function JsonInput({ value, onChange, common, label }) {
  const shown = value === undefined ? '' : JSON.stringify(value);
  const [text, setText] = useState(shown);
  const [bad, setBad] = useState(null);
  const [last, setLast] = useState(shown);
  if (shown !== last) { setLast(shown); setText(shown); setBad(null); }
  return (
    <label className={`field${bad ? ' invalid' : ''}`}>
      {label}
      <input {...common} type="text" className="mono" value={text} placeholder="JSON"
        onChange={(e) => {
          setText(e.target.value);
          if (e.target.value.trim() === '') { setBad(null); onChange(undefined); return; }
          try { const v = JSON.parse(e.target.value); setBad(null); setLast(JSON.stringify(v)); onChange(v); }
          catch { setBad('not valid JSON yet'); }
        }} />
      {bad && <span className="hint error">{bad}</span>}
    </label>
  );
}

/** The whole form for one object schema. */
export function SchemaForm({ schema, value, onChange, ctx }) {
  return (
    <div className="schema-form">
      <SchemaField schema={schema} root={schema} value={value} onChange={onChange} path={[]} ctx={ctx} required />
    </div>
  );
}
