import type { ExecutionContext } from '@nestjs/common';
import { InvalidLockKeyError, LockConfigurationError } from '../common/lock.errors.js';
import { EMPTY_PLACEHOLDER, NON_SCALAR_PLACEHOLDER, NOT_A_ROUTE_PARAM, UNKNOWN_PLACEHOLDER, BAD_KEY_FUNCTION_RESULT } from './etcd-lock.messages.js';

/** A lock key: a template such as `'order:<<id>>'`, or a function of the call's arguments. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the arguments of any method
export type LockKeySource = string | ((...args: any[]) => string);

/** Any method: only its source text and arity are read. */
export type AnyFunction = (...args: never[]) => unknown;

interface Placeholder {
  readonly text: string; // as written, for messages
  readonly path: readonly string[];
}

interface ParsedTemplate {
  readonly literals: readonly string[]; // one more than placeholders: before, between, after
  readonly placeholders: readonly Placeholder[];
}

const PLACEHOLDER = /<<([^<>]*)>>/g;

/** Roots an HTTP handler's template may name explicitly; a bare name is a route param. */
export const HTTP_ROOTS = ['params', 'query', 'body', 'headers', 'user'] as const;

/** An HTTP handler's route, as @WithLock checks its template against it. */
export interface HttpRoute {
  /** for messages, e.g. `POST /orders/:id/pay` */
  readonly description: string;
  /** the params every path of the handler has */
  readonly params: readonly string[];
}

/** The params of a route path (`:id`, `*rest`, `{/:id}`), in order. */
export function routeParams(path: string): string[] {
  return [...path.matchAll(/[:*]([A-Za-z_$][\w$]*)/g)].map(match => match[1]);
}

function parseTemplate(template: string, where: string): ParsedTemplate {
  const literals: string[] = [];
  const placeholders: Placeholder[] = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    const path = match[1].trim().split('.');
    if (path.some(segment => segment.trim() === '')) {
      throw new LockConfigurationError(UNKNOWN_PLACEHOLDER(where, match[0], 'it has an empty name or path segment'));
    }
    literals.push(template.slice(last, match.index));
    placeholders.push({ text: match[0], path: path.map(s => s.trim()) });
    last = match.index! + match[0].length;
  }
  literals.push(template.slice(last));
  return { literals, placeholders };
}

function render(template: string, parsed: ParsedTemplate, values: readonly unknown[]): string {
  let key = parsed.literals[0];
  parsed.placeholders.forEach((placeholder, i) => {
    key += encodeValue(values[i], placeholder, template) + parsed.literals[i + 1];
  });
  return key;
}

/**
 * Turns one placeholder's value into key text. Missing or empty values are an error, never
 * "order:undefined". Values are URI-encoded so they cannot forge the template's separators:
 * with 'a:<<x>>:<<y>>', x = '1:2' and y = '3' must not give the key of x = '1' and y = '2:3'.
 */
function encodeValue(value: unknown, placeholder: Placeholder, template: string): string {
  if (value === undefined || value === null || value === '') {
    throw new InvalidLockKeyError(EMPTY_PLACEHOLDER(placeholder.text, template, value));
  }
  if (!['string', 'number', 'bigint', 'boolean'].includes(typeof value)) {
    throw new InvalidLockKeyError(NON_SCALAR_PLACEHOLDER(placeholder.text, template, typeof value));
  }
  return encodeURIComponent(String(value));
}

function valueAt(root: unknown, path: readonly string[]): unknown {
  let value = root;
  for (const segment of path) {
    if (value === null || value === undefined) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

function checkKey(key: unknown, where: string): string {
  if (typeof key !== 'string' || key === '') throw new InvalidLockKeyError(BAD_KEY_FUNCTION_RESULT(where, key));
  return key;
}

/**
 * Compiles the key of a provider method, once, at bootstrap. A placeholder's first segment is
 * a parameter name or index; one that names no parameter fails here, naming class, method and
 * placeholder, rather than at the first call.
 */
export function compileMethodKey(source: LockKeySource, method: AnyFunction, where: string): (args: unknown[]) => string {
  if (typeof source === 'function') return args => checkKey(source(...args), where);
  const parsed = parseTemplate(source, where);
  const names = parameterNames(method);
  const lookups = parsed.placeholders.map(placeholder => {
    const [root, ...rest] = placeholder.path;
    const index = /^\d+$/.test(root) ? Number(root) : names.indexOf(root);
    if (index < 0 || index >= Math.max(names.length, method.length)) {
      const known = names.filter(n => n !== undefined).join(', ') || 'none';
      throw new LockConfigurationError(UNKNOWN_PLACEHOLDER(where, placeholder.text, `the parameters are: ${known}`));
    }
    return (args: unknown[]) => valueAt(args[index], rest);
  });
  return args => render(source, parsed, lookups.map(lookup => lookup(args)));
}

/**
 * Compiles the key of a controller, gateway or microservice handler. Over HTTP (`route`
 * given) a bare name is a route param, and one the route does not have fails here, at
 * bootstrap, naming the route, rather than as a 400 that blames every client; `params.`,
 * `query.`, `body.`, `headers.` and `user.` name where a value comes from. RPC and WebSocket
 * handlers read their payload. A function key receives the handler's raw arguments
 * (`context.getArgs()`).
 */
export function compileHandlerKey(source: LockKeySource, where: string, route?: HttpRoute): (context: ExecutionContext) => string {
  if (typeof source === 'function') return context => checkKey(source(...context.getArgs()), where);
  const parsed = parseTemplate(source, where);
  for (const { text, path } of parsed.placeholders) {
    const explicit = (HTTP_ROOTS as readonly string[]).includes(path[0]);
    if (route && !explicit && !route.params.includes(path[0])) {
      throw new LockConfigurationError(NOT_A_ROUTE_PARAM(where, route.description, text, path.join('.'), route.params));
    }
  }
  return context => {
    const values = parsed.placeholders.map(({ path }) => {
      const type = context.getType();
      if (type === 'rpc') return valueAt(context.switchToRpc().getData(), path);
      if (type === 'ws') return valueAt(context.switchToWs().getData(), path);
      const request = context.switchToHttp().getRequest<Record<string, unknown>>();
      if ((HTTP_ROOTS as readonly string[]).includes(path[0])) return valueAt(request[path[0]], path.slice(1));
      return valueAt(request.params, path);
    });
    return render(source, parsed, values);
  };
}

/**
 * The parameter names of a function, read from its source (undefined for destructured
 * parameters, which only an index can name). Read once per method at bootstrap.
 */
export function parameterNames(fn: AnyFunction): (string | undefined)[] {
  const source = fn.toString().replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, '');
  const open = source.indexOf('(');
  if (open < 0) return []; // `x => …` has no parentheses
  const names: (string | undefined)[] = [];
  let depth = 0;
  let current = '';
  for (let i = open + 1; i < source.length; i++) {
    const c = source[i];
    if ('([{'.includes(c)) depth++;
    if (')]}'.includes(c)) {
      if (depth === 0) break;
      depth--;
    }
    if (c === ',' && depth === 0) {
      names.push(nameOf(current));
      current = '';
    } else current += c;
  }
  if (current.trim() !== '') names.push(nameOf(current));
  return names;
}

function nameOf(parameter: string): string | undefined {
  const name = parameter.split('=')[0].trim().replace(/^\.\.\./, '');
  return /^[A-Za-z_$][\w$]*$/.test(name) ? name : undefined;
}
