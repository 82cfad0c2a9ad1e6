// A strict JSON (RFC 8259) parser for checkpoint headers and indexes. JSON.parse
// keeps the last of two equal keys, so a header that names one tensor twice would
// silently lose one; this parser reports duplicates, bounds nesting depth (so a
// hostile "[[[[..." header cannot overflow the stack) and builds objects with no
// prototype (so a key like "__proto__" is just a key).

export class JsonSyntaxError extends Error {
  override name = "JsonSyntaxError";
}

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

class Frame {
  key = "";
  constructor(
    readonly kind: "obj" | "arr",
    readonly v: JsonObject | JsonValue[],
  ) {}
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

export function parseStrictJson(text: string, maxDepth = 64): JsonValue {
  let i = 0;
  const n = text.length;

  const fail = (what: string): never => {
    throw new JsonSyntaxError(`${what} at character ${i}`);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const literal = (word: string, v: JsonValue): JsonValue => {
    if (text.startsWith(word, i)) {
      i += word.length;
      return v;
    }
    return fail("unexpected token");
  };

  const str = (): string => {
    i++; // opening quote
    let out = "";
    let start = i;
    for (;;) {
      if (i >= n) fail("unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c < 0x20) fail("control character in string");
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(start, i);
      const e = text[i + 1];
      i += 2;
      switch (e) {
        case '"':
          out += '"';
          break;
        case "\\":
          out += "\\";
          break;
        case "/":
          out += "/";
          break;
        case "b":
          out += "\b";
          break;
        case "f":
          out += "\f";
          break;
        case "n":
          out += "\n";
          break;
        case "r":
          out += "\r";
          break;
        case "t":
          out += "\t";
          break;
        case "u": {
          const hex = text.slice(i, i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("bad \\u escape");
          out += String.fromCharCode(Number.parseInt(hex, 16));
          i += 4;
          break;
        }
        default:
          i -= 2;
          fail("bad escape");
      }
      start = i;
    }
  };

  // Explicit stacks rather than recursion: depth is bounded by maxDepth anyway,
  // but this keeps the parser's own stack use constant.
  const stack: Frame[] = [];

  const value = (): JsonValue | Frame => {
    ws();
    if (i >= n) return fail("unexpected end of input");
    const c = text[i];
    if (c === "{" || c === "[") {
      if (stack.length >= maxDepth) fail(`nesting deeper than ${maxDepth}`);
      i++;
      return c === "{" ? new Frame("obj", Object.create(null) as JsonObject) : new Frame("arr", []);
    }
    if (c === '"') return str();
    if (c === "t") return literal("true", true);
    if (c === "f") return literal("false", false);
    if (c === "n") return literal("null", null);
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) return fail("unexpected token");
    i += m[0].length;
    return Number(m[0]);
  };

  // Reads an object key (after '{' or ','), or returns false at '}'.
  const objectKey = (f: Frame, first: boolean): boolean => {
    ws();
    if (first && text[i] === "}") {
      i++;
      return false;
    }
    if (text[i] !== '"') fail("expected a string key");
    const key = str();
    if (Object.hasOwn(f.v as JsonObject, key)) fail(`duplicate key ${JSON.stringify(key.slice(0, 200))}`);
    ws();
    if (text[i] !== ":") fail("expected ':'");
    i++;
    f.key = key;
    return true;
  };

  let result: JsonValue | undefined;
  let pending: JsonValue | Frame = value();
  for (;;) {
    if (pending instanceof Frame) {
      const f = pending;
      stack.push(f);
      if (f.kind === "obj") {
        if (!objectKey(f, true)) {
          stack.pop();
          pending = f.v;
          continue;
        }
      } else {
        ws();
        if (text[i] === "]") {
          i++;
          stack.pop();
          pending = f.v;
          continue;
        }
      }
      pending = value();
      continue;
    }
    // A complete value: attach it to the innermost open container.
    const top = stack[stack.length - 1];
    if (!top) {
      result = pending;
      break;
    }
    if (top.kind === "obj") (top.v as JsonObject)[top.key] = pending;
    else (top.v as JsonValue[]).push(pending);
    ws();
    const sep = text[i];
    const close = top.kind === "obj" ? "}" : "]";
    if (sep === ",") {
      i++;
      if (top.kind === "obj") objectKey(top, false);
      pending = value();
    } else if (sep === close) {
      i++;
      stack.pop();
      pending = top.v;
    } else {
      fail(`expected ',' or '${close}'`);
    }
  }
  ws();
  if (i !== n) fail("unexpected data after the JSON value");
  return result;
}
