// Build the web pages into web/dist/ (served by Firebase Hosting): the console (index.html,
// app.js) and the admin page (admin.html, admin.js, Chart.js included), each a bundled,
// minified entry (the Firebase JS SDK shared through a chunk: no CDN), with styles.css,
// admin.css, favicon.svg and config.json.
//
// config.json is written from these environment variables (all optional):
//   CHAT_MEMORY_API_BASE       base URL of the functions (default "/api": Hosting rewrites)
//   CHAT_MEMORY_AUTH_EMULATOR  "auto" (default: the Auth emulator on 127.0.0.1:9099 when the
//                              page is served from a loopback host), "off", or a URL
//   FIREBASE_WEBAPP_CONFIG     JSON of the Firebase web app config ({"apiKey", "projectId",
//                              "authDomain", "appId"}); default: the demo-chat-memory project
//
//   node build.mjs            build once
//   node build.mjs --watch    rebuild on change

import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "src");
const dist = join(here, "dist");
const watch = process.argv.includes("--watch");

function fileConfig() {
  const cfg = {};
  if (process.env.CHAT_MEMORY_API_BASE) cfg.apiBase = process.env.CHAT_MEMORY_API_BASE;
  if (process.env.CHAT_MEMORY_AUTH_EMULATOR) cfg.authEmulator = process.env.CHAT_MEMORY_AUTH_EMULATOR;
  const raw = (process.env.FIREBASE_WEBAPP_CONFIG || "").trim();
  if (raw) {
    try {
      cfg.firebase = JSON.parse(raw);
    } catch (e) {
      throw new Error(`FIREBASE_WEBAPP_CONFIG is not JSON: ${e.message}`);
    }
  }
  return cfg;
}

async function copyStatic() {
  for (const name of ["index.html", "styles.css", "admin.html", "admin.css", "favicon.svg"]) {
    await copyFile(join(src, name), join(dist, name));
  }
  await writeFile(join(dist, "config.json"), `${JSON.stringify(fileConfig(), null, 2)}\n`);
}

const options = {
  entryPoints: { app: join(src, "main.js"), admin: join(src, "admin.js") },
  outdir: dist,
  bundle: true,
  format: "esm",
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  target: ["es2020"],
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "info",
  plugins: [{ name: "static", setup: (b) => b.onEnd(copyStatic) }],
};

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
