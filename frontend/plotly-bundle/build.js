// Build frontend/static/plotly/plotly-cdi.min.js: plotly.js restricted to the trace types the
// CDI viewer draws (scatter, heatmap, mesh3d), minified with plotly.js's own esbuild settings.
// Run: npm ci && node build.js   (see README.md)
const path = require('path');
const esbuild = require('esbuild');
const { environmentPlugin } = require('esbuild-plugin-environment');
const { glsl } = require('esbuild-plugin-glsl');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');
const version = require('plotly.js/package.json').version;

esbuild.build({
  entryPoints: [path.join(__dirname, 'entry.js')],
  outfile: path.join(__dirname, '..', 'static', 'plotly', 'plotly-cdi.min.js'),
  format: 'iife',
  globalName: 'Plotly',
  bundle: true,
  minify: true,
  sourcemap: false,
  banner: { js: `/**\n* plotly.js v${version} (partial bundle: scatter, heatmap, mesh3d)\n* Copyright 2012-2026, Plotly, Inc.\n* All rights reserved.\n* Licensed under the MIT license\n*/` },
  plugins: [InlineCSSPlugin(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false })],
  alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
  define: { global: 'window', 'define.amd': 'false' },
  target: 'es2016',
  logLevel: 'warning',
}).then(() => console.log(`wrote plotly-cdi.min.js (plotly.js ${version})`));
