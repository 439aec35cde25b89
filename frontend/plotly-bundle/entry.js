// plotly.js with the trace types the CDI viewer draws: scatter, heatmap and mesh3d.
var Plotly = require('plotly.js/lib/core');
Plotly.register([require('plotly.js/lib/heatmap'), require('plotly.js/lib/mesh3d')]);
module.exports = Plotly;
