// Builds the console into dist/: app.js (+ sourcemap) from src/main.jsx, and the static
// index.html and style.css. `node services/console/web/build.mjs` works from any directory.
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
  entryPoints: [path.join(src, 'main.jsx')],
  outfile: path.join(dist, 'app.js'),
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

const bytes = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith('.js'))
  .reduce((sum, [, output]) => sum + output.bytes, 0);
console.log(`built ${path.relative(process.cwd(), dist) || '.'}: app.js ${(bytes / 1024).toFixed(1)} KiB, index.html, style.css`);
