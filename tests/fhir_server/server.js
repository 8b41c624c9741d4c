#!/usr/bin/env node
// In-memory FHIR R4 server for spine-cds integration tests and demos.
//
// Medplum's FhirRouter + MemoryRepository (npm @medplum/fhir-router) do the FHIR work; the modules
// here are the HTTP layer around them. They add what the engine does not do by itself, so that the server
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
//   * Binary content negotiation: GET Binary/[id] answers the raw content with its contentType when the
//     client's preferred Accept type is not a FHIR/JSON one (as HAPI and the EHRs do);
//   * test knobs: --delay-ms, POST /admin/reset, POST /admin/delay (?type=Binary: one type only),
//     POST /admin/binary-format?mode=json (always the FHIR JSON form), GET /admin/status.
//
// Usage: node server.js [--port 8103] [--host 127.0.0.1] [--load bundle.json ...] [--delay-ms N]
//                       [--default-count 20] [--max-count 1000] [--lenient-search] [--no-validate]
//                       [--public-base http://host:port/fhir] [--exit-with-stdin]
// --port 0 lets the OS choose a free port; the READY line tells which.
// Prints `READY http://HOST:PORT/fhir` on stdout once listening (after all --load bundles are in).
//
// This file is the entry point (start-up, loading, shutdown). The rest, one concern per module:
//   app.js         createServer: request routing, FHIR interactions, admin endpoints, error mapping
//   search.js      search parameter checks/rewrites, paging, absolute links
//   repository.js  per-type search expressions, validating MemoryRepository, transaction rollback
//   capability.js  the CapabilityStatement for GET [base]/metadata
//   http.js        bodies, responses, resource headers, CORS (incl. Private Network Access)
//   loading.js     --load files turned into transactions
//   cli.js         command-line options
//   outcome.js     OperationOutcome and HttpError
//   medplum.js     the Medplum packages (and the WebSocket stand-in they need on Node 20)
'use strict';

const { BASE_PATH, createServer } = require('./app');
const { parseArgs } = require('./cli');
const { loadFile } = require('./loading');

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
