// FHIR OperationOutcome bodies, and the error every layer throws to answer with one (status + outcome).
'use strict';

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

module.exports = { HttpError, operationOutcome };
