// Start-up loading: each --load file (a Bundle of any type, or one resource) goes in as one transaction.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

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

module.exports = { loadFile, toTransaction };
