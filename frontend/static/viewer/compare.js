/* Compare page: two or three results side by side, the second and third aligned onto the first
 * by the server (aligned.json: shift, twin, ramp, phase offset, said under each). For each:
 * metrics, the isosurface coloured by phase, and amplitude over phase of one plane; one plane
 * choice and one slider (a voxel index on the common grid) drive every result, and all share the
 * same axis ranges (nm when every result's voxel size is known, else voxels). */
"use strict";

(() => {
  const root = document.getElementById("compare");
  if (!root) return;
  const AXES = CDI.AXES;
  const HV = [["x", "y"], ["x", "z"], ["y", "z"]];  // (horizontal, vertical) of a plane normal to z, y, x
  const panes = [];

  /* Amplitude (top) and phase (bottom) of one plane of one result, from its quantised volumes. */
  class PlanePane {
    constructor(div, obj) {
      this.div = div;
      this.origin = obj.origin;
      this.amp = CDI.decodeVolume(obj.amplitude);
      this.phase = CDI.decodeVolume(obj.phase);
      this.coloraxis = obj.slices.layout.coloraxis;
      this.coloraxis2 = obj.slices.layout.coloraxis2;
      this.index = obj.index.map((v, a) => v + obj.origin[a]);
      this.label = obj.field ? obj.field.label : "phase";
      this.units = obj.units || { unit: "voxel", voxel_size_nm: null };
    }

    extent(axis) {
      return [this.origin[axis], this.origin[axis] + this.amp.shape[axis] - 1];
    }

    /* render(plane axis, voxel index, box: per-axis [lo, hi] in voxels, step: per-axis nm or 1, unit). */
    render(axis, value, box, step, unit) {
      const local = value - this.origin[axis];
      const [h, v] = [[2, 1], [2, 0], [1, 0]][axis];  // array axes shown horizontally / vertically
      const heat = (vol, n, coloraxis) => ({
        type: "heatmap", z: CDI.sliceVolume(vol, axis, local), x0: this.origin[h] * step[h], dx: step[h],
        y0: this.origin[v] * step[v], dy: step[v], xaxis: n === 1 ? "x" : "x2", yaxis: n === 1 ? "y" : "y2", coloraxis,
      });
      const scaled = (a) => [box[a][0] * step[a], box[a][1] * step[a]];
      const axisStyle = (title, anchor, domain, a) => ({ title: { text: `${title} (${unit})`, standoff: 2 }, anchor, domain, range: scaled(a) });
      const inside = local >= 0 && local < this.amp.shape[axis] ? "" : " (outside)";
      const layout = {
        height: 600, margin: { l: 45, r: 10, t: 25, b: 40 }, showlegend: false,
        xaxis: axisStyle(HV[axis][0], "y", [0, 0.78], h),
        yaxis: Object.assign(axisStyle(HV[axis][1], "x", [0.6, 1], v), { scaleanchor: "x" }),
        xaxis2: axisStyle(HV[axis][0], "y2", [0, 0.78], h),
        yaxis2: Object.assign(axisStyle(HV[axis][1], "x2", [0, 0.4], v), { scaleanchor: "x2" }),
        coloraxis: Object.assign({}, this.coloraxis, { colorbar: Object.assign({}, this.coloraxis.colorbar, { x: 0.84, y: 0.78, len: 0.42 }) }),
        coloraxis2: Object.assign({}, this.coloraxis2, { colorbar: Object.assign({}, this.coloraxis2.colorbar, { x: 0.84, y: 0.22, len: 0.42 }) }),
        annotations: [
          { text: `amplitude, ${AXES[axis]} = ${value}${inside}`, xref: "paper", yref: "paper", x: 0.39, y: 1, yanchor: "bottom", showarrow: false },
          { text: `${this.label}, ${AXES[axis]} = ${value}${inside}`, xref: "paper", yref: "paper", x: 0.39, y: 0.4, yanchor: "bottom", showarrow: false },
        ],
      };
      return Plotly.react(this.div, [heat(this.amp, 1, "coloraxis"), heat(this.phase, 2, "coloraxis2")], layout, CDI.PLOT_CONFIG);
    }
  }

  async function loadColumn(col, n) {
    const loading = col.querySelector(".loading");
    const error = col.querySelector(".error");
    let bundle;
    try {
      bundle = await CDI.getJSON(col.dataset.figuresUrl);
    } catch (e) {
      loading.hidden = true;
      error.hidden = false;
      error.textContent = e.message;
      return [];
    }
    loading.hidden = true;
    const r = bundle.result;
    if (!r) {
      error.hidden = false;
      error.textContent = `no result (status ${bundle.status})`;
      return [];
    }
    CDI.metricsRows(col.querySelector("table.metrics"), r.metrics);
    if (r.alignment) col.querySelector(".alignment").textContent = r.alignment.text;
    CDI.unitsNote(col.querySelector(".units-note"), r.object.units);
    if (r.object.ndim !== 3) {  // 2D: the aligned amplitude and phase images, no plane to choose
      col.querySelector(".cmp-iso").hidden = true;
      const s = r.object.slices;
      return [Plotly.newPlot(`cmp-slices-${n}`, s.data, Object.assign({}, s.layout, { height: 360 }), CDI.PLOT_CONFIG)];
    }
    panes.push(new PlanePane(document.getElementById(`cmp-slices-${n}`), r.object));
    const iso = r.object.isosurface;
    const field = r.object.field ? r.object.field.name : "phase";
    const layout = Object.assign({}, iso.layout, { height: 320, title: { text: `isosurface coloured by ${field}`, font: { size: 12 } } });
    return [Plotly.newPlot(`cmp-iso-${n}`, iso.data, layout, CDI.PLOT_CONFIG)];
  }

  async function main() {
    const columns = [...root.querySelectorAll(".compare-col")];
    const plots = (await Promise.all(columns.map((col, i) => loadColumn(col, i + 1)))).flat();
    document.getElementById("compare-controls").hidden = !panes.length;
    if (panes.length) {
      const box = [0, 1, 2].map((a) => [
        Math.min(...panes.map((p) => p.extent(a)[0])) - 0.5, Math.max(...panes.map((p) => p.extent(a)[1])) + 0.5]);
      const values = panes[0].index.slice();
      const slider = document.getElementById("plane-index");
      const output = document.getElementById("plane-value");
      let axis = 0;
      // nm when every result's voxel size is known and they agree, else voxels
      const sizes = panes.map((p) => p.units.voxel_size_nm);
      const same = sizes.every((s) => s && s.every((v, a) => Math.abs(v - sizes[0][a]) <= 1e-6 * v));
      const step = same ? sizes[0] : [1, 1, 1];
      const unit = same ? "nm" : "voxel";
      const draw = () => Promise.all(panes.map((p) => p.render(axis, values[axis], box, step, unit)));
      const setAxis = (a) => {
        axis = a;
        slider.min = Math.ceil(box[a][0]);
        slider.max = Math.floor(box[a][1]);
        slider.value = values[a];
        output.textContent = values[a];
        document.getElementById("plane-name").textContent = AXES[a];
        return draw();
      };
      slider.addEventListener("input", () => { values[axis] = Number(slider.value); output.textContent = slider.value; draw(); });
      document.querySelectorAll("input[name=plane]").forEach((r) => r.addEventListener("change", () => setAxis(Number(r.value))));
      plots.push(setAxis(0));
    }
    await Promise.all(plots);
    CDI.bindPngButtons();
    document.body.dataset.rendered = "1";
    document.body.dataset.resultRendered = "1";
  }

  main();
})();
