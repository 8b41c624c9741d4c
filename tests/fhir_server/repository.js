// The FHIR engine's storage: the R4 definitions indexed per resource type (fast scans), and a
// MemoryRepository that validates writes and makes transactions all-or-nothing.
'use strict';

const { core, definitions, MemoryRepository } = require('./medplum');

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

module.exports = { TestRepository, indexDefinitions };
