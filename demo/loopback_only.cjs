// Preloaded into third-party Node servers by `make sandbox-check` (node -r ./demo/loopback_only.cjs):
// the Da Vinci CRD Request Generator's server.js calls app.listen(PORT), which binds every interface.
// This makes every server of the process listen on 127.0.0.1 only, without editing its code.
"use strict";
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] !== null && typeof args[0] === "object" && !Array.isArray(args[0])) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  } else if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
    if (typeof args[1] === "string") args[1] = "127.0.0.1";
    else args.splice(1, 0, "127.0.0.1");
  }
  return listen.apply(this, args);
};
