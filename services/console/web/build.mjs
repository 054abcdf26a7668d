// Builds the console into dist/: app.js (+ sourcemap) from src/main.jsx, the chunks it loads
// on demand (chunks/: the reporting pages and ECharts, fetched on the first visit of a
// dashboard or of Explore), and the static index.html and style.css.
// `node services/console/web/build.mjs` works from any directory.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, 'src');
const dist = path.join(here, 'dist');

await rm(dist, { recursive: true, force: true }); // no stale files from earlier builds
await mkdir(dist, { recursive: true });

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: path.join(src, 'main.jsx') },
  outdir: dist,
  entryNames: '[name]',
  // Chunks are imported relative to app.js (/app.js → /chunks/…), whatever the page's path.
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  sourcemap: true,
  define: { 'process.env.NODE_ENV': '"production"' },
  metafile: true,
  logLevel: 'warning',
});

await Promise.all(['index.html', 'style.css'].map((file) => copyFile(path.join(src, file), path.join(dist, file))));

// What a first visit loads (app.js and the chunks it imports statically) and what only the
// reporting pages load on demand.
const outputs = result.metafile.outputs;
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const appFile = Object.keys(outputs).find((file) => path.basename(file) === 'app.js');
const first = new Set();
const visit = (file) => {
  if (first.has(file)) return;
  first.add(file);
  outputs[file].imports.filter((imported) => imported.kind === 'import-statement').forEach((imported) => visit(imported.path));
};
visit(appFile);
const scripts = Object.keys(outputs).filter((file) => file.endsWith('.js'));
const sum = (files) => files.reduce((total, file) => total + outputs[file].bytes, 0);
const later = scripts.filter((file) => !first.has(file));
console.log(`built ${path.relative(process.cwd(), dist) || '.'}: first load ${kib(sum([...first]))} (app.js ${kib(outputs[appFile].bytes)}), `
  + `on demand ${kib(sum(later))} (${later.map((file) => `${path.basename(file)} ${kib(outputs[file].bytes)}`).join(', ')}), index.html, style.css`);
