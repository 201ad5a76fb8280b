// Go text/template, the subset Docker users' scripts use (`inspect -f`, `ps --format`, `network ls --format`),
// plus Docker's template functions and its `table` output (Go's text/tabwriter with Docker's settings).
//
// No npm library is faithful enough (the few "go template" packages are wrappers around a Go binary or
// unrelated string interpolation), so this is our own, small interpreter. What is supported:
//   text, {{/* comments */}}, trim markers {{- -}}, pipelines with |, parenthesised sub-pipelines,
//   .Field.Chain, $ and $var.Field, {{$x := ...}} / {{$x = ...}}, string/raw-string/number/bool/nil literals,
//   if / else if / else, range (arrays and maps, sorted by key as Go does; $i, $e :=; else), with / else, end;
//   Go's functions and eq ne lt le gt ge and or not len index print printf println slice
//   and Docker's json join split upper lower title truncate pad.
// Anything else (define, template, block, break, continue, html, js, call, ...) is refused when the template is
// parsed, with an error naming it: a script never gets silently wrong output.
//
// Values are JSON-like. Printing follows Go's fmt %v for the types Docker's data decodes to: strings as is,
// integral numbers without a decimal point, nil as <nil>, a missing map key as <no value>, arrays as [a b],
// maps as map[k:v] with sorted keys. (Docker prints its typed structs as {a b}; nsnet's data is maps, so a
// whole sub-object prints as map[...]: scripts that want a sub-object use {{json .X}}, which is identical.)

export class TemplateError extends Error {}

/** A record whose fields are Docker "methods" (ps/ls rows): an unknown field is an error there, not <no value>. */
export const STRICT: unique symbol = Symbol('strict');

type Value = unknown;

// ---------------------------------------------------------------- lexer / parser
type Arg =
  | { k: 'field'; chain: string[] } // .A.B (chain [] = dot)
  | { k: 'var'; name: string; chain: string[] }
  | { k: 'func'; name: string }
  | { k: 'lit'; v: Value }
  | { k: 'pipe'; p: Pipeline; chain: string[] };
interface Cmd { args: Arg[] }
interface Pipeline { decl: string[]; assign: boolean; cmds: Cmd[]; src: string }
type Node =
  | { k: 'text'; s: string }
  | { k: 'action'; p: Pipeline }
  | { k: 'if' | 'with'; p: Pipeline; then: Node[]; else: Node[] }
  | { k: 'range'; p: Pipeline; body: Node[]; else: Node[] };

const BUILTINS = new Set([
  'and', 'or', 'not', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'len', 'index', 'print', 'printf', 'println', 'slice',
  'json', 'join', 'split', 'upper', 'lower', 'title', 'truncate', 'pad',
]);
const UNSUPPORTED = new Set(['define', 'template', 'block', 'break', 'continue', 'html', 'js', 'urlquery', 'call']);

type Tok = { t: 'id' | 'field' | 'var' | 'str' | 'num' | '(' | ')' | '|' | ':=' | '=' | ','; v: string };

function lexAction(src: string, where: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const bad = (why: string): never => { throw new TemplateError(`template: ${where}: ${why}`); };
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === '(' || c === ')' || c === '|' || c === ',') { toks.push({ t: c, v: c }); i++; continue; }
    if (c === ':' && src[i + 1] === '=') { toks.push({ t: ':=', v: ':=' }); i += 2; continue; }
    if (c === '=') { toks.push({ t: '=', v: '=' }); i++; continue; }
    if (c === '"') {
      let j = i + 1;
      let s = '';
      for (;;) {
        if (j >= src.length) bad('unterminated quoted string');
        const d = src[j];
        if (d === '"') break;
        if (d === '\\') {
          const e = src[j + 1];
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", a: '\x07', b: '\b', f: '\f', v: '\v', '0': '\0' };
          if (e === 'x' || e === 'u') {
            const n = e === 'x' ? 2 : 4;
            const hex = src.slice(j + 2, j + 2 + n);
            if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) bad('invalid escape in quoted string');
            s += String.fromCodePoint(parseInt(hex, 16));
            j += 2 + n;
            continue;
          }
          if (!(e in map)) bad(`invalid escape \\${e ?? ''} in quoted string`);
          s += map[e];
          j += 2;
          continue;
        }
        s += d;
        j++;
      }
      toks.push({ t: 'str', v: s });
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) bad('unterminated raw quoted string');
      toks.push({ t: 'str', v: src.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    if (c === "'") {
      const m = /^'(\\.|[^\\'])'/u.exec(src.slice(i));
      if (!m) bad('malformed character constant');
      const ch = m![1].startsWith('\\') ? ({ n: '\n', t: '\t', '\\': '\\', "'": "'" } as Record<string, string>)[m![1][1]] ?? m![1][1] : m![1];
      toks.push({ t: 'num', v: String(ch.codePointAt(0)) });
      i += m![0].length;
      continue;
    }
    let m = /^-?(0x[0-9a-fA-F]+|\d+(\.\d+)?([eE][-+]?\d+)?)/.exec(src.slice(i));
    if (m && (c !== '-' || /\d/.test(src[i + 1] ?? ''))) { toks.push({ t: 'num', v: m[0] }); i += m[0].length; continue; }
    m = /^\$[A-Za-z0-9_]*((\.[A-Za-z0-9_]+)*)/.exec(src.slice(i));
    if (m) { toks.push({ t: 'var', v: m[0] }); i += m[0].length; continue; }
    m = /^(\.[A-Za-z0-9_]+)+|^\./.exec(src.slice(i));
    if (m) { toks.push({ t: 'field', v: m[0] }); i += m[0].length; continue; }
    m = /^[A-Za-z_][A-Za-z0-9_]*((\.[A-Za-z0-9_]+)*)/.exec(src.slice(i));
    if (m) { toks.push({ t: 'id', v: m[0] }); i += m[0].length; continue; }
    bad(`unexpected ${JSON.stringify(c)} in command`);
  }
  return toks;
}

function chainOf(s: string): string[] {
  return s.split('.').filter((x) => x !== '');
}

/** Parses a pipeline from tokens[pos..]; stops at ')' (for sub-pipelines) or the end. */
function parsePipeline(toks: Tok[], pos: { i: number }, where: string, src: string, allowDecl: boolean, nested: boolean): Pipeline {
  const bad = (why: string): never => { throw new TemplateError(`template: ${where}: ${why}`); };
  const p: Pipeline = { decl: [], assign: false, cmds: [], src };
  // Declarations: $x := / $x = / $i, $e :=
  if (allowDecl && toks[pos.i]?.t === 'var') {
    let j = pos.i;
    const names: string[] = [];
    while (toks[j]?.t === 'var' && !toks[j].v.slice(1).includes('.')) {
      names.push(toks[j].v);
      if (toks[j + 1]?.t === ',') { j += 2; continue; }
      j++;
      break;
    }
    if (names.length && (toks[j]?.t === ':=' || toks[j]?.t === '=')) {
      p.decl = names;
      p.assign = toks[j].t === '=';
      if (names.length > 2) bad('too many declarations in command');
      pos.i = j + 1;
    }
  }
  let cmd: Cmd = { args: [] };
  for (;;) {
    const t = toks[pos.i];
    if (!t || t.t === ')') {
      if (t && !nested) bad('unexpected right paren');
      break;
    }
    pos.i++;
    if (t.t === '|') {
      if (!cmd.args.length) bad('missing command before |');
      p.cmds.push(cmd);
      cmd = { args: [] };
      continue;
    }
    if (t.t === '(') {
      const sub = parsePipeline(toks, pos, where, src, false, true);
      if (toks[pos.i]?.t !== ')') bad('unclosed left paren');
      pos.i++;
      // A field chain right after the paren: (index .X 0).Name
      let chain: string[] = [];
      if (toks[pos.i]?.t === 'field' && toks[pos.i].v !== '.') { chain = chainOf(toks[pos.i].v); pos.i++; }
      cmd.args.push({ k: 'pipe', p: sub, chain });
      continue;
    }
    if (t.t === 'field') { cmd.args.push({ k: 'field', chain: chainOf(t.v) }); continue; }
    if (t.t === 'var') {
      const [name, ...chain] = t.v.split('.');
      cmd.args.push({ k: 'var', name, chain });
      continue;
    }
    if (t.t === 'str') { cmd.args.push({ k: 'lit', v: t.v }); continue; }
    if (t.t === 'num') { cmd.args.push({ k: 'lit', v: Number(t.v) }); continue; }
    if (t.t === 'id') {
      if (t.v === 'true' || t.v === 'false') { cmd.args.push({ k: 'lit', v: t.v === 'true' }); continue; }
      if (t.v === 'nil') { cmd.args.push({ k: 'lit', v: null }); continue; }
      if (t.v.includes('.')) bad(`unexpected ${t.v}`);
      if (UNSUPPORTED.has(t.v)) bad(`"${t.v}" is not supported by nsnet's templates`);
      if (!BUILTINS.has(t.v)) bad(`function "${t.v}" not defined`);
      if (cmd.args.length) bad(`function "${t.v}" used as an argument (put it in parentheses)`);
      cmd.args.push({ k: 'func', name: t.v });
      continue;
    }
    bad(`unexpected "${t.v}" in command`);
  }
  if (!cmd.args.length) {
    if (p.cmds.length) bad('missing command after |');
    bad('missing value for command');
  }
  p.cmds.push(cmd);
  return p;
}

export interface Template {
  nodes: Node[];
  source: string;
}

export function parseTemplate(source: string): Template {
  // Split into text and actions, applying trim markers.
  type Piece = { text: string } | { action: string; line: number };
  const pieces: Piece[] = [];
  let i = 0;
  let line = 1;
  while (i < source.length) {
    const open = source.indexOf('{{', i);
    if (open < 0) { pieces.push({ text: source.slice(i) }); break; }
    let text = source.slice(i, open);
    let start = open + 2;
    if (source[start] === '-' && /\s/.test(source[start + 1] ?? '')) { text = text.replace(/\s+$/, ''); start += 1; }
    pieces.push({ text });
    line += (source.slice(i, open).match(/\n/g) ?? []).length;
    let close: number;
    if (source.slice(start).trimStart().startsWith('/*')) {
      const endc = source.indexOf('*/', start);
      if (endc < 0) throw new TemplateError(`template: :${line}: unclosed comment`);
      close = source.indexOf('}}', endc);
    } else {
      close = findClose(source, start);
    }
    if (close < 0) throw new TemplateError(`template: :${line}: unclosed action`);
    let inner = source.slice(start, close);
    let next = close + 2;
    if (/\s-$/.test(inner)) {
      inner = inner.slice(0, -1);
      const m = /^\s*/.exec(source.slice(next))!;
      next += m[0].length;
    }
    pieces.push({ action: inner, line });
    line += (inner.match(/\n/g) ?? []).length;
    i = next;
  }
  let pos = 0;
  const parseList = (endOk: Set<string>): { nodes: Node[]; end: string; endArg: string } => {
    const nodes: Node[] = [];
    while (pos < pieces.length) {
      const pc = pieces[pos++];
      if ('text' in pc) { if (pc.text) nodes.push({ k: 'text', s: pc.text }); continue; }
      const where = `:${pc.line}`;
      const a = pc.action.trim();
      if (a.startsWith('/*')) continue;
      const kw = /^([a-z]+)\b\s*([\s\S]*)$/.exec(a);
      const word = kw?.[1] ?? '';
      const rest = kw?.[2] ?? '';
      if (word === 'end' || word === 'else') {
        if (!endOk.has(word)) throw new TemplateError(`template: ${where}: unexpected {{${word}}}`);
        return { nodes, end: word, endArg: rest };
      }
      if (word === 'if' || word === 'with' || word === 'range') {
        const p = parsePipe(rest, where, true);
        const body = parseList(new Set(['end', 'else']));
        let elseNodes: Node[] = [];
        if (body.end === 'else') {
          if (body.endArg.startsWith('if ') && word === 'if') {
            // {{else if X}}: an if nested in the else branch sharing our {{end}}.
            const p2 = parsePipe(body.endArg.slice(3), where, true);
            const nested = parseElseIf(p2);
            elseNodes = [nested];
          } else {
            if (body.endArg) throw new TemplateError(`template: ${where}: unexpected "${body.endArg}" in else`);
            const e = parseList(new Set(['end']));
            elseNodes = e.nodes;
          }
        }
        if (word === 'range') nodes.push({ k: 'range', p, body: body.nodes, else: elseNodes });
        else nodes.push({ k: word, p, then: body.nodes, else: elseNodes });
        continue;
      }
      if (UNSUPPORTED.has(word)) throw new TemplateError(`template: ${where}: "${word}" is not supported by nsnet's templates`);
      nodes.push({ k: 'action', p: parsePipe(a, where, true) });
    }
    if (endOk.size) throw new TemplateError('template: unexpected EOF (an {{end}} is missing)');
    return { nodes, end: '', endArg: '' };
  };
  const parseElseIf = (p: Pipeline): Node => {
    const body = parseList(new Set(['end', 'else']));
    let elseNodes: Node[] = [];
    if (body.end === 'else') {
      if (body.endArg.startsWith('if ')) elseNodes = [parseElseIf(parsePipe(body.endArg.slice(3), '', true))];
      else elseNodes = parseList(new Set(['end'])).nodes;
    }
    return { k: 'if', p, then: body.nodes, else: elseNodes };
  };
  const nodes = parseList(new Set()).nodes;
  return { nodes, source };
}

/** The `}}` closing an action that starts at `start`, skipping quoted strings. */
function findClose(s: string, start: number): number {
  for (let i = start; i < s.length; i++) {
    const c = s[i];
    if (c === '"') {
      for (i++; i < s.length && s[i] !== '"'; i++) if (s[i] === '\\') i++;
    } else if (c === '`') {
      i = s.indexOf('`', i + 1);
      if (i < 0) return -1;
    } else if (c === '}' && s[i + 1] === '}') {
      return i;
    }
  }
  return -1;
}

function parsePipe(src: string, where: string, allowDecl: boolean): Pipeline {
  const toks = lexAction(src, where);
  const pos = { i: 0 };
  const p = parsePipeline(toks, pos, where, src.trim(), allowDecl, false);
  if (pos.i < toks.length) throw new TemplateError(`template: ${where}: unexpected "${toks[pos.i].v}" in command`);
  return p;
}

// ---------------------------------------------------------------- values
const isMap = (v: Value): v is Record<string, Value> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function truth(v: Value): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isMap(v)) return Object.keys(v).length > 0;
  return true;
}

/** Go's %v. */
export function show(v: Value): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return goNumber(v);
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'function') return show((v as () => Value)());
  if (Array.isArray(v)) return '[' + v.map(show).join(' ') + ']';
  if (isMap(v)) return 'map[' + Object.keys(v).sort().map((k) => `${k}:${show(v[k])}`).join(' ') + ']';
  return String(v);
}

function goNumber(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return String(n);
  const s = String(n);
  return s.replace(/e\+?(-?)(\d)$/, 'e+$1' + '0$2').replace('e+-', 'e-');
}

function typeName(v: Value): string {
  if (v === undefined || v === null) return 'interface {}';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return '[]interface {}';
  return 'map[string]interface {}';
}

// ---------------------------------------------------------------- functions
type Fn = (...args: Value[]) => Value;

function str(v: Value, fn: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return show(v);
  throw new TemplateError(`${fn}: wrong type for value; expected string; got ${typeName(v)}`);
}

function cmp(a: Value, b: Value, fn: string): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new TemplateError(`${fn}: incompatible types for comparison`);
}

function eqv(a: Value, b: Value): boolean {
  if (a === undefined) a = null;
  if (b === undefined) b = null;
  if (a === null || b === null) return a === b;
  if (typeof a !== typeof b || typeof a === 'object') {
    if (typeof a === 'object' || typeof b === 'object') throw new TemplateError('eq: invalid type for comparison');
    throw new TemplateError('eq: incompatible types for comparison');
  }
  return a === b;
}

/** Go's fmt.Sprintf for the verbs scripts use: %v %s %d %q %t %x %X %f %e %g %c %%, with flags, width and
 *  precision. */
export function sprintf(format: string, args: Value[]): string {
  let ai = 0;
  return format.replace(/%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*))?([a-zA-Z%])/g, (all, flags: string, width: string | undefined, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    if (width === '*') width = String(args[ai++]);
    if (prec === '*') prec = String(args[ai++]);
    if (ai >= args.length) return `%!${verb}(MISSING)`;
    const v = args[ai++];
    let s: string;
    switch (verb) {
      case 'v': s = flags.includes('+') || flags.includes('#') ? (isMap(v) || Array.isArray(v) ? JSON.stringify(v) : show(v)) : show(v); break;
      case 's': s = typeof v === 'string' ? v : show(v); if (prec !== undefined) s = [...s].slice(0, Number(prec)).join(''); break;
      case 'q': s = JSON.stringify(typeof v === 'string' ? v : show(v)); break;
      case 'd': s = typeof v === 'number' ? String(Math.trunc(v)) : `%!d(${typeName(v)}=${show(v)})`; if (typeof v === 'number' && flags.includes('+') && v >= 0) s = '+' + s; break;
      case 't': s = typeof v === 'boolean' ? String(v) : `%!t(${typeName(v)}=${show(v)})`; break;
      case 'x': case 'X':
        s = typeof v === 'number' ? Math.trunc(v).toString(16) : Buffer.from(typeof v === 'string' ? v : show(v)).toString('hex');
        if (verb === 'X') s = s.toUpperCase();
        break;
      case 'f': case 'F': s = typeof v === 'number' ? v.toFixed(prec === undefined ? 6 : Number(prec)) : `%!f(${typeName(v)}=${show(v)})`; break;
      case 'e': s = typeof v === 'number' ? goNumber(Number(v.toExponential(prec === undefined ? 6 : Number(prec)))) : `%!e(${typeName(v)}=${show(v)})`; if (typeof v === 'number') s = v.toExponential(prec === undefined ? 6 : Number(prec)).replace(/e([+-])(\d)$/, 'e$10$2'); break;
      case 'g': s = typeof v === 'number' ? goNumber(v) : `%!g(${typeName(v)}=${show(v)})`; break;
      case 'c': s = typeof v === 'number' ? String.fromCodePoint(v) : `%!c(${typeName(v)}=${show(v)})`; break;
      default: throw new TemplateError(`printf: verb %${verb} is not supported by nsnet's templates`);
    }
    if (width !== undefined) {
      const w = Number(width);
      const len = [...s].length;
      if (len < w) {
        const pad = (flags.includes('0') && !flags.includes('-') && /[dxXfeg]/.test(verb) ? '0' : ' ').repeat(w - len);
        s = flags.includes('-') ? s + pad : pad === '' ? s : pad[0] === '0' && s.startsWith('-') ? '-' + pad + s.slice(1) : pad + s;
      }
    }
    void all;
    return s;
  }) + (ai < args.length ? `%!(EXTRA ${args.slice(ai).map((v) => `${typeName(v)}=${show(v)}`).join(', ')})` : '');
}

/** Go's fmt.Sprint: spaces between operands when neither is a string. */
function sprint(args: Value[]): string {
  let out = '';
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += show(a);
  });
  return out;
}

const FUNCS: Record<string, Fn> = {
  and: (...a) => { for (const x of a) if (!truth(x)) return x; return a[a.length - 1]; },
  or: (...a) => { for (const x of a) if (truth(x)) return x; return a[a.length - 1]; },
  not: (a) => !truth(a),
  eq: (a, ...bs) => { if (!bs.length) throw new TemplateError('eq: missing argument for comparison'); return bs.some((b) => eqv(a, b)); },
  ne: (a, b) => !eqv(a, b),
  lt: (a, b) => cmp(a, b, 'lt') < 0,
  le: (a, b) => cmp(a, b, 'le') <= 0,
  gt: (a, b) => cmp(a, b, 'gt') > 0,
  ge: (a, b) => cmp(a, b, 'ge') >= 0,
  len: (a) => {
    if (typeof a === 'string') return Buffer.byteLength(a);
    if (Array.isArray(a)) return a.length;
    if (isMap(a)) return Object.keys(a).length;
    throw new TemplateError(`len of type ${typeName(a)}`);
  },
  index: (a, ...keys) => {
    let cur = a;
    for (const k of keys) {
      if (Array.isArray(cur)) {
        if (typeof k !== 'number' || !Number.isInteger(k)) throw new TemplateError(`index: cannot index slice/array with type ${typeName(k)}`);
        if (k < 0 || k >= cur.length) throw new TemplateError(`index: index out of range: ${k}`);
        cur = cur[k];
      } else if (isMap(cur)) {
        if (typeof k !== 'string') throw new TemplateError(`index: value has type ${typeName(k)}; should be string`);
        cur = Object.prototype.hasOwnProperty.call(cur, k) ? cur[k] : undefined;
      } else if (cur === null || cur === undefined) {
        throw new TemplateError('index of untyped nil');
      } else {
        throw new TemplateError(`can't index item of type ${typeName(cur)}`);
      }
    }
    return cur;
  },
  slice: (a, ...ix) => {
    if (typeof a !== 'string' && !Array.isArray(a)) throw new TemplateError(`can't slice item of type ${typeName(a)}`);
    const [i = 0, j = a.length] = ix as number[];
    return a.slice(i, j);
  },
  print: (...a) => sprint(a),
  printf: (f, ...a) => sprintf(str(f, 'printf'), a),
  println: (...a) => a.map(show).join(' ') + '\n',
  // Docker's (github.com/docker/cli/templates): json without HTML escaping, join of a string list, split, ...
  json: (v) => JSON.stringify(v === undefined ? null : v),
  join: (list, sep) => {
    if (!Array.isArray(list)) throw new TemplateError(`join: wrong type for value; expected []string; got ${typeName(list)}`);
    return list.map((x) => str(x, 'join')).join(str(sep, 'join'));
  },
  split: (s, sep) => str(s, 'split').split(str(sep, 'split')),
  upper: (s) => str(s, 'upper').toUpperCase(),
  lower: (s) => str(s, 'lower').toLowerCase(),
  title: (s) => str(s, 'title').replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, a: string, b: string) => a + b.toUpperCase()),
  truncate: (s, n) => { const cs = [...str(s, 'truncate')]; return cs.length > Number(n) ? cs.slice(0, Number(n)).join('') : cs.join(''); },
  pad: (s, l, r) => ' '.repeat(Number(l)) + str(s, 'pad') + ' '.repeat(Number(r)),
};

// ---------------------------------------------------------------- execution
interface Scope { dot: Value; vars: Array<Map<string, Value>> }

function lookupVar(sc: Scope, name: string): Value {
  for (let i = sc.vars.length - 1; i >= 0; i--) if (sc.vars[i].has(name)) return sc.vars[i].get(name);
  throw new TemplateError(`undefined variable: ${name}`);
}

function field(v: Value, name: string, path: string): Value {
  if (isMap(v)) {
    if (Object.prototype.hasOwnProperty.call(v, name)) return v[name];
    if ((v as Record<symbol, unknown>)[STRICT]) throw new TemplateError(`executing at <${path}>: can't evaluate field ${name}`);
    return undefined; // Go: a missing map key is <no value>
  }
  if (v === undefined || v === null) throw new TemplateError(`executing at <${path}>: nil pointer evaluating interface {}.${name}`);
  throw new TemplateError(`executing at <${path}>: can't evaluate field ${name} in type ${typeName(v)}`);
}

function walk(v: Value, chain: string[], prefix: string, args: Value[] | null): Value {
  let cur = v;
  let path = prefix;
  chain.forEach((name, i) => {
    path += '.' + name;
    cur = field(cur, name, path);
    // A "method" (function-valued field, as Docker's ps rows have: .Label "key") is called, with the command's
    // arguments when it is the last element of the chain.
    if (typeof cur === 'function') cur = (cur as Fn)(...(i === chain.length - 1 && args ? args : []));
    else if (i === chain.length - 1 && args && args.length) throw new TemplateError(`executing at <${path}>: ${name} has arguments but cannot be invoked as function`);
  });
  return cur;
}

function evalArg(a: Arg, sc: Scope): Value {
  switch (a.k) {
    case 'lit': return a.v;
    case 'field': return walk(sc.dot, a.chain, '', null);
    case 'var': return walk(lookupVar(sc, a.name), a.chain, a.name, null);
    case 'pipe': return walk(evalPipeline(a.p, sc), a.chain, '', null);
    case 'func': throw new TemplateError(`function ${a.name} used as a value`);
  }
}

function evalCmd(c: Cmd, sc: Scope, piped: Value[]): Value {
  const [head, ...rest] = c.args;
  if (head.k === 'func') {
    const args = [...rest.map((a) => evalArg(a, sc)), ...piped];
    if (head.name !== 'and' && head.name !== 'or' && head.name !== 'print' && head.name !== 'println' && head.name !== 'printf'
      && head.name !== 'index' && head.name !== 'slice' && head.name !== 'eq' && !args.length) {
      throw new TemplateError(`wrong number of args for ${head.name}: want at least 1 got 0`);
    }
    return FUNCS[head.name](...args);
  }
  const args = [...rest.map((a) => evalArg(a, sc)), ...piped];
  if (head.k === 'field' || head.k === 'var') {
    const base = head.k === 'field' ? sc.dot : lookupVar(sc, head.name);
    if (!head.chain.length) {
      if (args.length) throw new TemplateError(`can't give argument to non-function ${head.k === 'field' ? '.' : head.name}`);
      return base;
    }
    return walk(base, head.chain, head.k === 'var' ? head.name : '', args);
  }
  if (args.length) throw new TemplateError(`can't give argument to non-function ${show(evalArg(head, sc))}`);
  return evalArg(head, sc);
}

function evalPipeline(p: Pipeline, sc: Scope): Value {
  let v: Value = undefined;
  p.cmds.forEach((c, i) => { v = evalCmd(c, sc, i === 0 ? [] : [v]); });
  if (p.decl.length === 1) {
    if (p.assign) {
      let found = false;
      for (let i = sc.vars.length - 1; i >= 0 && !found; i--) if (sc.vars[i].has(p.decl[0])) { sc.vars[i].set(p.decl[0], v); found = true; }
      if (!found) throw new TemplateError(`undefined variable: ${p.decl[0]}`);
    } else {
      sc.vars[sc.vars.length - 1].set(p.decl[0], v);
    }
  }
  return v;
}

function execNodes(nodes: Node[], sc: Scope, out: string[]): void {
  for (const n of nodes) {
    switch (n.k) {
      case 'text': out.push(n.s); break;
      case 'action': {
        const v = evalPipeline(n.p, sc);
        if (!n.p.decl.length) out.push(show(v));
        break;
      }
      case 'if': case 'with': {
        sc.vars.push(new Map());
        try {
          const v = evalPipeline(n.p, sc);
          if (truth(v)) execNodes(n.then, n.k === 'with' ? { dot: v, vars: sc.vars } : sc, out);
          else execNodes(n.else, sc, out);
        } finally { sc.vars.pop(); }
        break;
      }
      case 'range': {
        sc.vars.push(new Map());
        try {
          // range's declarations bind the index/key and element, not the pipeline's value.
          const decl = n.p.decl;
          const v = evalPipeline({ ...n.p, decl: [] }, sc);
          let items: Array<[Value, Value]>;
          if (Array.isArray(v)) items = v.map((x, i) => [i, x]);
          else if (isMap(v)) items = Object.keys(v).sort().map((k) => [k, v[k]]);
          else if (typeof v === 'number' && Number.isInteger(v)) items = Array.from({ length: Math.max(0, v) }, (_x, i) => [i, i]);
          else if (v === undefined || v === null) items = [];
          else throw new TemplateError(`range can't iterate over ${show(v)}`);
          if (!items.length) { execNodes(n.else, sc, out); break; }
          for (const [k, x] of items) {
            const frame = new Map<string, Value>();
            if (decl.length === 1) frame.set(decl[0], x);
            if (decl.length === 2) { frame.set(decl[0], k); frame.set(decl[1], x); }
            sc.vars.push(frame);
            try { execNodes(n.body, { dot: x, vars: sc.vars }, out); } finally { sc.vars.pop(); }
          }
        } finally { sc.vars.pop(); }
        break;
      }
    }
  }
}

export function execute(t: Template, data: Value): string {
  const out: string[] = [];
  try {
    execNodes(t.nodes, { dot: data, vars: [new Map([['$', data]])] }, out);
  } catch (e) {
    if (e instanceof TemplateError && !e.message.startsWith('template:')) throw new TemplateError(`template: ${e.message}`);
    throw e;
  }
  return out.join('');
}

// ---------------------------------------------------------------- Docker's output formats
/** Go's text/tabwriter as Docker's formatter configures it: minwidth 10, tabwidth 1, padding 3, padchar ' '.
 *  Every tab-terminated cell is a column cell; a column's width is decided per block of consecutive lines
 *  that have that column; the text after a line's last tab is not aligned. */
export function tabwrite(text: string, minwidth = 10, padding = 3): string {
  const trailingNl = text.endsWith('\n');
  const lines = (trailingNl ? text.slice(0, -1) : text).split('\n').map((l) => l.split('\t'));
  const width = (s: string) => [...s].length;
  const widths: number[][] = lines.map(() => []);
  const format = (line0: number, line1: number, col: number): void => {
    let i = line0;
    while (i < line1) {
      if (lines[i].length - 1 <= col) { i++; continue; }
      // A block: consecutive lines with a cell in this column.
      let j = i;
      let w = minwidth;
      while (j < line1 && lines[j].length - 1 > col) {
        w = Math.max(w, width(lines[j][col]) + padding);
        j++;
      }
      for (let k = i; k < j; k++) widths[k][col] = w;
      format(i, j, col + 1);
      i = j;
    }
  };
  format(0, lines.length, 0);
  const out = lines.map((cells, li) => cells.map((c, ci) => (ci < cells.length - 1 ? c + ' '.repeat(Math.max(0, widths[li][ci] - width(c))) : c)).join(''));
  return out.join('\n') + (trailingNl ? '\n' : '');
}

export interface ListFormat {
  /** Default table template (without the `table ` prefix), as Docker's. */
  defaultTable: string;
  /** Header text of each field, as Docker's (ID -> "CONTAINER ID"). */
  headers: Record<string, string>;
}

/** Renders a listing as Docker's `--format` does: `table [TEMPLATE]` (a header row, then tabwriter alignment),
 *  `json` (one JSON object per line), or any other template (executed per row, one line each). `\t` and `\n`
 *  written literally in the format are tabs and newlines (Docker replaces them before parsing). */
export function renderList(format: string, rows: Array<Record<string, Value>>, lf: ListFormat, jsonRows: Array<Record<string, Value>> = rows): string {
  if (format === 'json') return jsonRows.map((r) => JSON.stringify(r) + '\n').join('');
  let f = format;
  const isTable = f.startsWith('table');
  if (isTable) f = f.slice('table'.length);
  f = f.trim();
  if (isTable && f === '') f = lf.defaultTable;
  f = f.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const t = parseTemplate(f);
  const body = rows.map((r) => {
    // Copied with its getters (a field computed only when the template reads it, e.g. ps's Labels).
    const row = Object.defineProperties({}, Object.getOwnPropertyDescriptors(r)) as Record<string | symbol, Value>;
    row[STRICT] = true;
    return execute(t, row) + '\n';
  }).join('');
  if (!isTable) return body;
  // The header row: the same template executed on the field-name -> header map (a method with arguments, such
  // as .Label "k", gets its header too).
  const hdr: Record<string | symbol, Value> = {};
  for (const [k, v] of Object.entries(lf.headers)) hdr[k] = (() => v) as unknown as Value;
  for (const k of Object.keys(rows[0] ?? {})) if (!(k in hdr)) hdr[k] = (() => k.toUpperCase()) as unknown as Value;
  let head: string;
  try {
    head = execute(t, hdr);
  } catch {
    head = '';
  }
  return tabwrite(head + '\n' + body);
}
