/* Compare page: two or three results side by side; one set of sliders (positions in voxels of
 * the common grid) drives the slices of every result. */
"use strict";

(() => {
  const root = document.getElementById("compare");
  if (!root) return;
  const viewers = [];

  async function loadColumn(col) {
    const id = col.dataset.job;
    const loading = col.querySelector(".loading");
    let bundle;
    try {
      bundle = await CDI.getJSON(col.dataset.figuresUrl);
    } catch (e) {
      loading.hidden = true;
      col.querySelector(".error").hidden = false;
      col.querySelector(".error").textContent = e.message;
      return [];
    }
    loading.hidden = true;
    const r = bundle.result;
    if (!r) {
      col.querySelector(".error").hidden = false;
      col.querySelector(".error").textContent = `no result (status ${bundle.status})`;
      return [];
    }
    CDI.metricsRows(col.querySelector("table.metrics"), r.metrics);
    const plots = [];
    const obj = r.object;
    if (obj.isosurface) {
      const layout = Object.assign({}, obj.isosurface.layout, { height: 320, title: { text: "isosurface coloured by phase", font: { size: 12 } } });
      plots.push(Plotly.newPlot(`cmp-iso-${id}`, obj.isosurface.data, layout, CDI.PLOT_CONFIG));
    }
    const div = document.getElementById(`cmp-slices-${id}`);
    if (obj.ndim === 3) {
      const layout = Object.assign({}, obj.slices.layout, { height: 380 });
      const viewer = new CDI.SliceViewer(div, { data: obj.slices.data, layout }, [obj.amplitude, obj.phase],
        { origin: obj.origin, index: obj.index, names: ["amplitude", "phase"] });
      viewers.push(viewer);
      plots.push(viewer.draw());
    } else {
      plots.push(Plotly.newPlot(div, obj.slices.data, obj.slices.layout, CDI.PLOT_CONFIG));
    }
    return plots;
  }

  async function main() {
    const columns = [...root.querySelectorAll(".compare-col")];
    const plots = (await Promise.all(columns.map(loadColumn))).flat();
    if (viewers.length) {
      const ranges = [0, 1, 2].map((a) => [
        Math.min(...viewers.map((v) => v.ranges()[a][0])), Math.max(...viewers.map((v) => v.ranges()[a][1]))]);
      const start = viewers[0].global.slice();
      viewers.forEach((v) => [0, 1, 2].forEach((a) => v.setIndex(a, start[a])));
      CDI.makeSliders(document.getElementById("compare-sliders"), {
        ranges, values: start, onInput: (a, value) => viewers.forEach((v) => v.setIndex(a, value)),
      });
    }
    await Promise.all(plots);
    document.body.dataset.rendered = "1";
    document.body.dataset.resultRendered = "1";
  }

  main();
})();
