// Preloaded into the Firebase CLI by make test and make dev (NODE_OPTIONS=--require ...).
// The Functions emulator gives each Python worker a port from portfinder, starting at a random
// port in 8081..9081: portfinder finds it free, then gunicorn binds it a second later. Two
// workers starting meanwhile (another function's, or another stack's on the machine: make test
// runs two) can be handed the same port; the second gunicorn fails to bind ("Connection in
// use") and the emulator sends its function's requests to the first, another function (405).
// Here those ports come from the OS (bind port 0: its ephemeral allocator does not hand a
// recently used port out again), and none twice in this process.
"use strict";
const net = require("net");
const path = require("path");

let portfinder = null;
try {
  const tools = path.dirname(require.resolve("firebase-tools/package.json", { paths: [process.cwd(), __dirname] }));
  portfinder = require(require.resolve("portfinder", { paths: [tools] }));
} catch (err) {
  // a Node process that is not the CLI (NODE_OPTIONS reaches its children too): nothing to do
}
const WORKER_FROM = 8081;
const WORKER_TO = 9081;
const given = new Set();

function osPort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen({ port: 0, host: "127.0.0.1" }, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function install(pf) {
  const original = pf.getPortPromise;
  pf.getPortPromise = async function getPortPromise(options, ...rest) {
    const want = options && options.port;
    if (typeof want === "number" && want >= WORKER_FROM && want <= WORKER_TO) {
      for (let i = 0; i < 50; i += 1) {
        const port = await osPort();
        if (!given.has(port)) {
          given.add(port);
          return port;
        }
      }
    }
    return original.call(this, options, ...rest);
  };
}

if (portfinder !== null) install(portfinder);
