// Search pre- and post-processing around the engine: strict parameter checks (400 instead of a silently
// empty page), typed reference rewrites, default/maximum page size, and absolute paging links.
'use strict';

const { core } = require('./medplum');
const { HttpError } = require('./outcome');

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

module.exports = { MATCHABLE_TYPES, decorateSearchBundle, parsePrefer, prepareSearch };
