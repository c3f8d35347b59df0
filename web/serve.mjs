// A small static server for web/dist/, for local work without the Hosting emulator.
//
//   node serve.mjs [--port 5080] [--host 127.0.0.1] [--api-proxy http://127.0.0.1:5001/demo-chat-memory/us-central1]
//
// With --api-proxy, /api/<name> is forwarded to <proxy>/<name>, as Hosting's rewrites do.
// Without it, /api/* answers 404 (the page then shows its error message).

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "dist");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
};
const port = Number(arg("--port", process.env.PORT || "5080"));
const host = arg("--host", "127.0.0.1");
const proxy = arg("--api-proxy", "");

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

async function forward(req, res, url) {
  const name = url.pathname.slice("/api/".length);
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const headers = { ...req.headers };
  delete headers.host;
  try {
    const upstream = await fetch(`${proxy.replace(/\/+$/, "")}/${name}${url.search}`, {
      method: req.method,
      headers,
      body: ["GET", "HEAD"].includes(req.method) ? undefined : Buffer.concat(chunks),
    });
    const out = {};
    upstream.headers.forEach((v, k) => {
      if (!["content-encoding", "transfer-encoding", "connection", "content-length"].includes(k)) out[k] = v;
    });
    res.writeHead(upstream.status, out);
    res.end(Buffer.from(await upstream.arrayBuffer()));
  } catch (e) {
    res.writeHead(502, { "content-type": "text/plain" });
    res.end(`proxy error: ${e.message}`);
  }
}

createServer(async (req, res) => {
  const url = new URL(req.url, `http://${req.headers.host || "localhost"}`);
  if (url.pathname.startsWith("/api/")) {
    if (proxy) return forward(req, res, url);
    res.writeHead(404, { "content-type": "text/plain" });
    return res.end("no API proxy configured (start serve.mjs with --api-proxy URL)");
  }
  // As Hosting's rewrite does: /admin is the admin page.
  const pathname = url.pathname === "/admin" ? "/admin.html" : url.pathname;
  let path = normalize(join(root, decodeURIComponent(pathname)));
  if (!path.startsWith(root + sep) && path !== root) {
    res.writeHead(403);
    return res.end();
  }
  try {
    if ((await stat(path)).isDirectory()) path = join(path, "index.html");
    await stat(path);
  } catch {
    res.writeHead(404, { "content-type": "text/plain" });
    return res.end("not found");
  }
  res.writeHead(200, { "content-type": TYPES[extname(path)] || "application/octet-stream", "cache-control": "no-store" });
  createReadStream(path).pipe(res);
}).listen(port, host, () => {
  console.log(`serving ${root} on http://${host}:${port}/${proxy ? ` (api -> ${proxy})` : ""}`);
});
