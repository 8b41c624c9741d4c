// The HTTP side of the server: request bodies, JSON responses, resource headers and CORS.
'use strict';

const { HttpError } = require('./outcome');

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const MAX_BODY_BYTES = 200 * 1024 * 1024;

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

/** Answers a CORS preflight, including Chrome's Private Network Access (a public page calling 127.0.0.1). */
function sendPreflight(req, res) {
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
}

module.exports = { parseBody, readBody, resourceHeaders, send, sendPreflight };
