// GET [base]/metadata: the router has no CapabilityStatement route, so it is built here (once) from the
// indexed definitions, listing only the search parameters this server can evaluate.
'use strict';

const { core } = require('./medplum');
const { MATCHABLE_TYPES } = require('./search');

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

module.exports = { capabilityStatement };
