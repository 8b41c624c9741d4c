// The server itself: one FHIR interaction at a time through Medplum's FhirRouter, with the search
// fixes, the admin endpoints (/admin/reset, /admin/delay, /admin/status) and error-to-OperationOutcome
// mapping around it.
'use strict';

const http = require('node:http');
const { core, FhirRouter } = require('./medplum');
const { capabilityStatement } = require('./capability');
const { parseBody, readBody, resourceHeaders, send, sendPreflight } = require('./http');
const { HttpError, operationOutcome } = require('./outcome');
const { TestRepository, indexDefinitions } = require('./repository');
const { decorateSearchBundle, parsePrefer, prepareSearch } = require('./search');

const BASE_PATH = '/fhir';

function createServer(opts) {
  indexDefinitions();
  const router = new FhirRouter();
  const repo = new TestRepository(opts.validate);
  // delayMs: every response; typeDelayMs: extra per resource type (a slow Binary store);
  // binaryFormat: 'negotiate' (native bytes unless the client asks for FHIR JSON) or 'json' (always JSON).
  const state = { delayMs: opts.delayMs, typeDelayMs: {}, binaryFormat: 'negotiate' };
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
      const type = url.searchParams.get('type');
      if (type) {
        state.typeDelayMs[type] = ms;
      } else {
        state.delayMs = ms;
      }
      return send(res, req, 200, { delayMs: state.delayMs, typeDelayMs: state.typeDelayMs });
    }
    if (route === 'POST /admin/binary-format') {
      const mode = url.searchParams.get('mode');
      if (!['negotiate', 'json'].includes(mode)) {
        throw new HttpError(400, 'invalid', 'POST /admin/binary-format needs ?mode=negotiate|json');
      }
      state.binaryFormat = mode;
      return send(res, req, 200, { binaryFormat: mode });
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
      return sendPreflight(req, res);
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
    const typeDelay = state.typeDelayMs[relPath.split('/')[0]] ?? 0;
    if (typeDelay > 0) {
      await new Promise((resolve) => setTimeout(resolve, typeDelay));
    }
    if (req.method === 'GET' && relPath === 'metadata') {
      return send(res, req, 200, capabilityStatement(base), {}, pretty);
    }
    const result = await serialized(() => handleFhir(req.method, relPath + url.search, body, req.headers, base));
    if (isBinaryRead(req.method, relPath) && result.status === 200 && wantsNative(req.headers.accept, state)) {
      return sendNative(res, req, result.body, result.headers);
    }
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

/** GET Binary/[id]: FHIR says a client that does not ask for a FHIR format gets the content itself. */
function isBinaryRead(method, relPath) {
  return method === 'GET' && /^Binary\/[^/?]+$/.test(relPath);
}

/** The client's most preferred media range is neither FHIR/JSON nor a wildcard. */
function wantsNative(accept, state) {
  if (state.binaryFormat === 'json' || !accept) {
    return false;
  }
  const ranges = String(accept)
    .split(',')
    .map((part, index) => {
      const [type, ...params] = part.trim().split(';');
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return { type: type.trim().toLowerCase(), q: q ? Number(q.slice(2)) : 1, index };
    })
    .sort((a, b) => b.q - a.q || a.index - b.index);
  const top = ranges[0]?.type ?? '';
  return top !== '' && !top.includes('json') && !top.includes('fhir') && top !== '*/*';
}

function sendNative(res, req, binary, headers) {
  const payload = Buffer.from(binary.data ?? '', 'base64');
  res.writeHead(200, {
    ...headers,
    'Access-Control-Allow-Origin': req.headers.origin || '*',
    'Content-Type': binary.contentType || 'application/octet-stream',
    'Content-Length': payload.length,
    'Cache-Control': 'no-store',
  });
  res.end(payload);
}

module.exports = { BASE_PATH, createServer };
