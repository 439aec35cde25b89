/* Dataset page: log-scale diffraction slices through the peak with a slider per axis and a
 * 3D view (nested isosurfaces of log-intensity); an object file gets isosurface + slices. */
"use strict";

(() => {
  const root = document.getElementById("dataset-figures");
  if (!root) return;
  const $ = (id) => document.getElementById(id);

  async function main() {
    let bundle;
    try {
      bundle = await CDI.getJSON(root.dataset.endpoint);
    } catch (e) {
      root.querySelector(".loading").hidden = true;
      const err = root.querySelector(".error");
      err.hidden = false;
      err.textContent = `Could not draw this dataset: ${e.message}`;
      document.body.dataset.rendered = "error";
      return;
    }
    root.querySelector(".loading").hidden = true;
    const plots = [];
    if (bundle.kind === "object") {
      const obj = bundle.object;
      $("slices-title").textContent = "Amplitude and phase slices";
      if (obj.isosurface) {
        $("panel-3d").hidden = false;
        plots.push(Plotly.newPlot("plot-3d", obj.isosurface.data, obj.isosurface.layout, CDI.PLOT_CONFIG));
      }
      $("panel-slices").hidden = false;
      if (obj.ndim === 3) {
        const viewer = new CDI.SliceViewer($("plot-slices"), obj.slices, [obj.amplitude, obj.phase],
          { origin: obj.origin, index: obj.index, names: ["amplitude", "phase"] });
        plots.push(viewer.draw());
        CDI.makeSliders($("slices-sliders"), { ranges: viewer.ranges(), values: viewer.global, onInput: (a, v) => viewer.setIndex(a, v) });
      } else {
        plots.push(Plotly.newPlot("plot-slices", obj.slices.data, obj.slices.layout, CDI.PLOT_CONFIG));
      }
    } else {
      const d = bundle.diffraction;
      // a simulated training set: its first pattern, and the true object's isosurface in 3D
      const volume = bundle.volume3d || (bundle.object && bundle.object.isosurface);
      if (volume) {
        $("panel-3d").hidden = false;
        plots.push(Plotly.newPlot("plot-3d", volume.data, volume.layout, CDI.PLOT_CONFIG));
      }
      if (bundle.note) $("slices-title").textContent += ` — ${bundle.note}`;
      $("panel-slices").hidden = false;
      if (d.ndim === 3) {
        const viewer = new CDI.SliceViewer($("plot-slices"), d.slices, [d.measured], { index: d.index, names: ["measured"], binning: d.binning });
        plots.push(viewer.draw());
        CDI.makeSliders($("slices-sliders"), { ranges: viewer.ranges(), values: viewer.global, onInput: (a, v) => viewer.setIndex(a, v) });
        if (d.binning > 1) $("slices-title").textContent += ` — binned ×${d.binning} from ${d.shape.join(" × ")}`;
      } else {
        plots.push(Plotly.newPlot("plot-slices", d.slices.data, d.slices.layout, CDI.PLOT_CONFIG));
      }
    }
    if ($("panel-3d").hidden) $("panel-3d").parentElement.classList.add("single");
    await Promise.all(plots);
    CDI.bindPngButtons();
    document.body.dataset.rendered = "1";
  }

  main();
})();
