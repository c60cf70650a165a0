// Reading the JSON Schemas that msgspec emits (the catalog's): $ref into $defs,
// anyOf [X, null] for optional fields, tagged unions whose options carry kind: {enum: [tag]}.

/** Follow a local $ref ("#/$defs/Name") against root; other keys of the referring schema win. */
export function resolve(schema, root) {
  let s = schema || {};
  let guard = 0;
  while (s.$ref && guard++ < 20) {
    const name = s.$ref.replace(/^#\/\$defs\//, '');
    const target = root?.$defs?.[name];
    if (!target) break;
    const { $ref, ...rest } = s;
    s = { ...target, ...rest };
  }
  return s;
}

const isNull = (s) => s && (s.type === 'null' || (Array.isArray(s.type) && s.type.length === 1 && s.type[0] === 'null'));

/**
 * What a schema is, for the form: {type, schema, nullable, options}.
 * type is one of object | map | string | enum | number | integer | boolean | array | union | any | const.
 */
export function describe(schema, root) {
  let s = resolve(schema, root);
  let nullable = false;
  const alts = s.anyOf || s.oneOf;
  if (alts) {
    const nonNull = alts.filter((a) => !isNull(resolve(a, root)));
    nullable = nonNull.length < alts.length;
    if (nonNull.length === 1) {
      const inner = resolve(nonNull[0], root);
      s = { ...inner, title: inner.title || s.title, description: inner.description || s.description, default: s.default };
    } else {
      return { type: 'union', schema: s, nullable, options: nonNull.map((o) => resolve(o, root)) };
    }
  }
  // A one-value enum is a union's tag (fixed), unless it may also be left out (since: "entry" | null).
  if (s.enum) return { type: s.enum.length === 1 && !nullable ? 'const' : 'enum', schema: s, nullable };
  if (s.type === 'object') return { type: s.properties ? 'object' : 'map', schema: s, nullable };
  if (['string', 'number', 'integer', 'boolean', 'array'].includes(s.type)) return { type: s.type, schema: s, nullable };
  return { type: 'any', schema: s, nullable };
}

/** The tag of a union option: the single enum value of its "kind" (or first single-enum) property. */
export function optionTag(option) {
  const props = option.properties || {};
  const key = props.kind ? 'kind' : Object.keys(props).find((k) => props[k].enum?.length === 1);
  return key ? { key, value: props[key].enum[0] } : null;
}

/** Which option of a union a value matches (by tag, else by JSON type); 0 when nothing fits. */
export function optionIndex(options, value) {
  const i = options.findIndex((o) => {
    const tag = optionTag(o);
    if (tag) return value && typeof value === 'object' && value[tag.key] === tag.value;
    if (o.type === 'array') return Array.isArray(value);
    if (o.type === 'object') return value && typeof value === 'object' && !Array.isArray(value);
    return typeof value === o.type || (o.type === 'integer' && Number.isInteger(value));
  });
  return i < 0 ? 0 : i;
}

/** A starting value for a schema: its default, else the smallest value that has the required parts. */
export function defaultFor(schema, root) {
  const d = describe(schema, root);
  const s = d.schema;
  if (s.default !== undefined && s.default !== null) return structuredClone(s.default);
  switch (d.type) {
    case 'const': return s.enum[0];
    case 'enum': return s.enum[0];
    case 'union': return defaultFor(d.options[0], root);
    case 'object': {
      const out = {};
      for (const key of s.required || []) out[key] = defaultFor(s.properties[key], root);
      return out;
    }
    case 'map': return {};
    case 'array': return [];
    case 'boolean': return false;
    case 'number': case 'integer': return 0;
    case 'string': return '';
    default: return null;
  }
}

/** Set (or, with undefined, remove) a key of an object value without touching the original. */
export function setKey(obj, key, value) {
  const out = { ...(obj || {}) };
  if (value === undefined) delete out[key];
  else out[key] = value;
  return out;
}

/** Why a string does not satisfy its schema, or null. */
export function stringProblem(schema, value) {
  if (typeof value !== 'string') return null;
  if (schema.minLength && value.length < schema.minLength) return value.length ? `at least ${schema.minLength} characters` : 'required';
  if (schema.maxLength && value.length > schema.maxLength) return `at most ${schema.maxLength} characters`;
  if (schema.pattern && value !== '') {
    // msgspec emits Python named groups (?P<name>…); JavaScript spells them (?<name>…).
    let re;
    try { re = new RegExp(schema.pattern.replace(/\(\?P</g, '(?<')); } catch { return null; }
    if (!re.test(value)) return schema.description ? `expected ${schema.description}` : `must match ${schema.pattern}`;
  }
  return null;
}

/** Why a number does not satisfy its schema, or null. */
export function numberProblem(schema, value) {
  if (typeof value !== 'number') return null;
  if (schema.type === 'integer' && !Number.isInteger(value)) return 'a whole number';
  if (schema.minimum !== undefined && value < schema.minimum) return `at least ${schema.minimum}`;
  if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) return `more than ${schema.exclusiveMinimum}`;
  if (schema.maximum !== undefined && value > schema.maximum) return `at most ${schema.maximum}`;
  if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) return `less than ${schema.exclusiveMaximum}`;
  return null;
}
