// Preloaded into the Firebase CLI by make test and make dev (NODE_OPTIONS=--require ...).
// The Functions emulator proxies each request to a Python worker (gunicorn, which closes
// an idle kept-alive connection after 2 s) through Node's global agent, which keeps
// connections alive since Node 19: a request sent on a socket the worker is closing fails
// with "socket hang up" and the emulator answers 500 {"code":"ECONNRESET"}. One connection
// per proxied request removes that race (loopback connections cost microseconds).
"use strict";
const http = require("http");
http.globalAgent = new http.Agent({ keepAlive: false });
