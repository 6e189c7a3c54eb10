// Builds the console into web/dist, which is committed and embedded in flowd's binary:
//
//   npm --prefix web ci && npm --prefix web run build
//
// dist/index.html loads dist/assets/app-<hash>.{js,css} (bundled and minified by esbuild);
// dist/source-hash.txt records the hash of the sources it was built from, which a Rust test
// compares with the sources in the tree (so a change to web/src without a rebuild fails CI).

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import * as esbuild from 'esbuild';

const root = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(root, 'dist');

/** The files the build depends on, relative to web/, '/'-separated and sorted. */
function sourceFiles() {
  const files = ['index.html', 'build.mjs', 'package-lock.json'];
  const walk = (dir, prefix) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const name = `${prefix}/${entry.name}`;
      if (entry.isDirectory()) walk(path.join(dir, entry.name), name);
      else files.push(name);
    }
  };
  walk(path.join(root, 'src'), 'src');
  return files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** SHA-256 over each file's path, length and bytes (the Rust test computes the same). */
export function sourceHash() {
  const hash = createHash('sha256');
  for (const file of sourceFiles()) {
    const bytes = fs.readFileSync(path.join(root, file));
    hash.update(file);
    hash.update(Buffer.from([0]));
    hash.update(String(bytes.length));
    hash.update(Buffer.from([0]));
    hash.update(bytes);
  }
  return hash.digest('hex');
}

async function build() {
  fs.rmSync(dist, { recursive: true, force: true });
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { app: 'src/main.js' },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    outdir: 'dist/assets',
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((file) => '/' + path.relative('dist', file));
  const script = outputs.find((file) => file.endsWith('.js'));
  const style = outputs.find((file) => file.endsWith('.css'));
  if (!script || !style) throw new Error(`esbuild produced no script or style: ${outputs}`);
  const template = fs.readFileSync(path.join(root, 'index.html'), 'utf8');
  const tags = `<link rel="stylesheet" href="${style}">\n<script type="module" src="${script}"></script>`;
  if (!template.includes('<!--assets-->')) throw new Error('index.html has no <!--assets--> marker');
  fs.writeFileSync(path.join(dist, 'index.html'), template.replace('<!--assets-->', tags));
  fs.writeFileSync(path.join(dist, 'assets', 'licenses.txt'), licenses(result.metafile));
  fs.writeFileSync(path.join(dist, 'source-hash.txt'), sourceHash() + '\n');
  // Precompressed copies, served to browsers that accept gzip.
  for (const file of outputs) {
    const bytes = fs.readFileSync(path.join(dist, file));
    const gzipped = zlib.gzipSync(bytes, { level: 9 });
    fs.writeFileSync(path.join(dist, file + '.gz'), gzipped);
    console.log(`dist${file}  ${(bytes.length / 1024).toFixed(1)} KiB (${(gzipped.length / 1024).toFixed(1)} KiB gzipped)`);
  }
}

/** The licence of every npm package bundled into the console, as their licences require. */
function licenses(metafile) {
  const packages = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (match) packages.add(match[1]);
  }
  const parts = ['Third-party software bundled in flowd\'s web console.\n'];
  for (const name of [...packages].sort()) {
    const dir = path.join(root, 'node_modules', name);
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    const file = fs.readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
    const text = file ? fs.readFileSync(path.join(dir, file), 'utf8').trim() : `License: ${meta.license}`;
    parts.push(`----\n${name} ${meta.version} (${meta.license})\n\n${text}\n`);
  }
  return parts.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await build();
}
