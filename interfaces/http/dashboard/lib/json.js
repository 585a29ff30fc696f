// Strict JSON for signed events (spec section 2): a parser that sees what JSON.parse hides,
// and the canonical encoder.
//
// JSON.parse keeps the last of two repeated member names, reads 1.0 as 1 and rounds
// integers past 2^53; a verifier must refuse all three. parse() keeps integers exact
// (a value outside the safe range, or any fraction, becomes a marked Unsafe number that
// canonical() refuses), throws on a repeated name, and counts nesting without recursion
// limits of its own (objects and arrays; the outermost value is level 1).

export const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 2^53 - 1
export const MAX_DEPTH = 64;

export class JsonError extends Error {}

/** A number canonical bytes cannot hold: a fraction or an integer past 2^53 - 1. */
export class Unsafe {
  constructor(text, fraction) {
    this.text = text;
    this.fraction = fraction;
  }
}

const WS = new Set([" ", "\t", "\n", "\r"]);

/** Parse one JSON text; returns {value, depth}. Throws JsonError (malformed). */
export function parse(text) {
  let i = 0;
  let deepest = 0;
  const fail = (why) => {
    throw new JsonError(`${why} (at ${i})`);
  };
  const ws = () => {
    while (i < text.length && WS.has(text[i])) i++;
  };
  const str = () => {
    // text[i] === '"'
    i++;
    let out = "";
    for (;;) {
      if (i >= text.length) fail("unterminated string");
      const c = text[i];
      if (c === '"') {
        i++;
        return out;
      }
      if (c === "\\") {
        const e = text[i + 1];
        const map = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
        if (e in map) {
          out += map[e];
          i += 2;
        } else if (e === "u") {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("bad \\u escape");
          out += String.fromCharCode(parseInt(hex, 16));
          i += 6;
        } else fail("bad escape");
      } else {
        if (c.charCodeAt(0) < 0x20) fail("control character in string");
        out += c;
        i++;
      }
    }
  };
  const num = () => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === "-") fail("bad number");
    i += m[0].length;
    if (m[2] || m[3]) return new Unsafe(m[0], true);
    const big = BigInt(m[0]);
    if (big > BigInt(MAX_SAFE) || big < -BigInt(MAX_SAFE)) return new Unsafe(m[0], false);
    return Number(m[0]);
  };
  const lit = (word, value) => {
    if (text.startsWith(word, i)) {
      i += word.length;
      return value;
    }
    return fail("unexpected token");
  };
  // An explicit stack, so a line nested 100,000 deep costs a loop, not a stack overflow.
  const value = () => {
    const stack = []; // frames: {container, key|null, isArray}
    let result;
    let done = false;
    const put = (v) => {
      if (!stack.length) {
        result = v;
        done = true;
        return;
      }
      const top = stack[stack.length - 1];
      if (top.isArray) top.c.push(v);
      else top.c[top.key] = v;
    };
    for (;;) {
      ws();
      if (i >= text.length) fail("unexpected end");
      const c = text[i];
      let v;
      let opened = false;
      if (c === "{" || c === "[") {
        i++;
        const frame = { c: c === "{" ? Object.create(null) : [], isArray: c === "[", key: null };
        stack.push(frame);
        deepest = Math.max(deepest, stack.length);
        if (deepest > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH} levels`);
        ws();
        if (text[i] === (frame.isArray ? "]" : "}")) {
          i++;
          stack.pop();
          v = frame.isArray ? frame.c : plain(frame.c);
        } else {
          opened = true;
          if (!frame.isArray) key(frame);
        }
      } else if (c === '"') v = str();
      else if (c === "-" || (c >= "0" && c <= "9")) v = num();
      else if (c === "t") v = lit("true", true);
      else if (c === "f") v = lit("false", false);
      else if (c === "n") v = lit("null", null);
      else fail("unexpected token");
      if (opened) continue;
      put(v);
      // close containers whose last member this was
      for (;;) {
        if (done) return result;
        const top = stack[stack.length - 1];
        ws();
        if (text[i] === ",") {
          i++;
          if (!top.isArray) key(top);
          break;
        }
        if (text[i] === (top.isArray ? "]" : "}")) {
          i++;
          stack.pop();
          put(top.isArray ? top.c : plain(top.c));
          continue;
        }
        fail("expected , or closing bracket");
      }
    }
  };
  const key = (frame) => {
    ws();
    if (text[i] !== '"') fail("object keys must be strings");
    const k = str();
    if (Object.prototype.hasOwnProperty.call(frame.c, k)) fail(`an object repeats the member name '${k}'`);
    ws();
    if (text[i] !== ":") fail("expected :");
    i++;
    frame.key = k;
  };
  const v = value();
  ws();
  if (i !== text.length) fail("trailing characters");
  return { value: v, depth: deepest };
}

function plain(obj) {
  // Objects are built without a prototype (so "__proto__" is an ordinary name); hand back
  // ordinary objects with the same own members.
  return Object.assign({}, obj);
}

/** Why a value falls outside the canonical model (safe integers only), or null. */
export function modelProblem(value, where = "$") {
  const stack = [[value, where]];
  while (stack.length) {
    const [v, at] = stack.pop();
    if (v === null || typeof v === "string" || typeof v === "boolean") continue;
    if (v instanceof Unsafe) {
      return v.fraction
        ? `numbers must be integers, got a fraction at \`${at}\``
        : `integer out of range (|n| > 2^53-1) at \`${at}\``;
    }
    if (typeof v === "number") {
      if (Number.isSafeInteger(v)) continue;
      return `numbers must be integers at \`${at}\``;
    }
    if (Array.isArray(v)) v.forEach((x, k) => stack.push([x, `${at}[${k}]`]));
    else if (typeof v === "object") for (const k of Object.keys(v)) stack.push([v[k], `${at}.${k}`]);
    else return `unsupported JSON value at \`${at}\``;
  }
  return null;
}

function byCodePoint(a, b) {
  // Python's sort_keys and msgspec's sorted order compare code points; JS < compares
  // UTF-16 units. They differ only past U+FFFF, so compare code points to agree.
  const x = Array.from(a);
  const y = Array.from(b);
  for (let k = 0; k < Math.min(x.length, y.length); k++) {
    const d = x[k].codePointAt(0) - y[k].codePointAt(0);
    if (d) return d;
  }
  return x.length - y.length;
}

/** Canonical JSON text (RFC 8785 for safe integers): sorted keys, no spaces, no ASCII escaping. */
export function canonical(value) {
  const problem = modelProblem(value);
  if (problem) throw new JsonError(problem);
  const out = [];
  const walk = (v) => {
    if (v === null || typeof v === "boolean" || typeof v === "number") out.push(JSON.stringify(v));
    else if (typeof v === "string") out.push(JSON.stringify(v));
    else if (Array.isArray(v)) {
      out.push("[");
      v.forEach((x, k) => {
        if (k) out.push(",");
        walk(x);
      });
      out.push("]");
    } else {
      out.push("{");
      Object.keys(v)
        .sort(byCodePoint)
        .forEach((k, n) => {
          if (n) out.push(",");
          out.push(JSON.stringify(k), ":");
          walk(v[k]);
        });
      out.push("}");
    }
  };
  walk(value);
  return out.join("");
}

/** Canonical bytes (UTF-8). */
export function canonicalBytes(value) {
  return new TextEncoder().encode(canonical(value));
}
