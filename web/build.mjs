// Build the console into web/dist/ (served by Firebase Hosting): one bundled, minified
// app.js (Firebase JS SDK included: no CDN), index.html, styles.css and config.json.
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
  await copyFile(join(src, "index.html"), join(dist, "index.html"));
  await copyFile(join(src, "styles.css"), join(dist, "styles.css"));
  await writeFile(join(dist, "config.json"), `${JSON.stringify(fileConfig(), null, 2)}\n`);
}

const options = {
  entryPoints: [join(src, "main.js")],
  outfile: join(dist, "app.js"),
  bundle: true,
  format: "esm",
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
