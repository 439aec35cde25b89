/* Helpers shared by every page: JSON fetches with CSRF, quantised volumes, slice viewers,
 * sliders and PNG buttons. Figure dicts come ready-made from webapp/viewer/figures.py;
 * this file only slices the 8-bit volumes it sends (same axis convention: [z, y, x];
 * along z the image is [y, x], along y it is [z, x], along x it is [z, y]). */
"use strict";

const CDI = (() => {
  const AXES = ["z", "y", "x"];
  const PLOT_CONFIG = { responsive: true, displaylogo: false, toImageButtonOptions: { format: "png", scale: 2 } };

  function csrfToken() {
    const el = document.querySelector("input[name=csrfmiddlewaretoken]");
    return el ? el.value : "";
  }

  async function getJSON(url) {
    return readJSON(await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" }));
  }

  /* The JSON body of a fetch response; throws an Error with the server's message when not ok. */
  async function readJSON(response) {
    const body = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
    if (!response.ok) throw new Error(body.error || body.detail || `${response.status} ${response.statusText}`);
    return body;
  }

  async function post(url, formData) {
    return readJSON(await fetch(url, {
      method: "POST",
      body: formData || new FormData(),
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    }));
  }

  function formatSeconds(s) {
    if (s === null || s === undefined || !isFinite(s)) return "";
    if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  }

  function formatNumber(v) {
    if (v === null || v === undefined || !isFinite(v)) return "—";
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : Number(v.toPrecision(4)).toString();
  }

  /* An 8-bit quantised volume from figures.encode_volume: 0 = NaN, 1..255 = lo..hi. */
  function decodeVolume(spec) {
    const bin = atob(spec.bdata);
    const codes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) codes[i] = bin.charCodeAt(i);
    const table = new Float32Array(256);
    table[0] = NaN;
    for (let c = 1; c < 256; c++) table[c] = spec.lo + ((c - 1) / 254) * (spec.hi - spec.lo);
    return { shape: spec.shape, codes, table };
  }

  /* The 2D image (array of rows) of a decoded volume at `index` along `axis`; NaN outside. */
  function sliceVolume(vol, axis, index) {
    const [Z, Y, X] = vol.shape;
    const n = vol.shape[axis];
    const dims = axis === 0 ? [Y, X] : axis === 1 ? [Z, X] : [Z, Y];
    const rows = [];
    const inside = index >= 0 && index < n;
    for (let r = 0; r < dims[0]; r++) {
      const row = new Array(dims[1]);
      for (let c = 0; c < dims[1]; c++) {
        if (!inside) { row[c] = NaN; continue; }
        const z = axis === 0 ? index : r;
        const y = axis === 0 ? r : axis === 1 ? index : c;
        const x = axis === 2 ? index : c;
        row[c] = vol.table[vol.codes[(z * Y + y) * X + x]];
      }
      rows.push(row);
    }
    return rows;
  }

  /* Three range sliders (z, y, x); `ranges[a]` = [min, max]; onInput(axis, value). */
  function makeSliders(container, { ranges, values, onInput, label = "" }) {
    container.innerHTML = "";
    const inputs = [];
    AXES.forEach((name, a) => {
      const wrap = document.createElement("label");
      wrap.className = "slider";
      wrap.innerHTML = `${label}${name} <input type="range" min="${ranges[a][0]}" max="${ranges[a][1]}" step="1" value="${values[a]}" data-axis="${a}"> <output>${values[a]}</output>`;
      const input = wrap.querySelector("input");
      const out = wrap.querySelector("output");
      input.addEventListener("input", () => { out.textContent = input.value; onInput(a, Number(input.value)); });
      inputs.push(input);
      container.appendChild(wrap);
    });
    return {
      inputs,
      set(a, v) { inputs[a].value = v; inputs[a].nextElementSibling.textContent = v; },
    };
  }

  /* A rows × 3 slice figure whose images are re-cut from quantised volumes on slider moves.
   * figure: python figure (heatmaps row-major, annotations = titles); volumes: encoded specs,
   * one per row; origin: full-grid position of voxel [0, 0, 0]; names: row names. */
  class SliceViewer {
    constructor(div, figure, volumes, { origin = [0, 0, 0], index, names, binning = 1 }) {
      this.div = div;
      this.data = figure.data;
      this.layout = figure.layout;
      this.volumes = volumes.map(decodeVolume);
      this.origin = origin;
      this.names = names;
      this.binning = binning;
      this.global = index.map((v, a) => v + origin[a]);
      this.scheduled = false;
    }

    draw() {
      return Plotly.newPlot(this.div, this.data, this.layout, PLOT_CONFIG);
    }

    ranges() {
      return this.volumes[0].shape.map((n, a) => [this.origin[a], this.origin[a] + n - 1]);
    }

    setIndex(axis, globalValue) {
      this.global[axis] = globalValue;
      const local = globalValue - this.origin[axis];
      this.volumes.forEach((vol, r) => {
        const trace = this.data[r * 3 + axis];
        trace.z = sliceVolume(vol, axis, local);
        const inside = local >= 0 && local < vol.shape[axis];
        const where = this.binning > 1 ? `${globalValue} (binned ×${this.binning})` : `${globalValue}`;
        this.layout.annotations[r * 3 + axis].text = `${this.names[r]}, ${AXES[axis]} = ${where}${inside ? "" : " (outside)"}`;
      });
      if (!this.scheduled) {
        this.scheduled = true;
        requestAnimationFrame(() => {
          this.scheduled = false;
          this.layout.datarevision = (this.layout.datarevision || 0) + 1;
          Plotly.react(this.div, this.data, this.layout, PLOT_CONFIG);
        });
      }
    }
  }

  function bindPngButtons(root = document) {
    root.querySelectorAll("button.png[data-plot]").forEach((button) => {
      if (button.dataset.bound) return;
      button.dataset.bound = "1";
      button.addEventListener("click", () => {
        const el = document.getElementById(button.dataset.plot);
        if (!el || !el.data) return;
        const name = `${document.title.split(" · ")[0].replace(/[^A-Za-z0-9]+/g, "_")}_${button.dataset.plot}`;
        Plotly.downloadImage(el, { format: "png", filename: name, width: el.clientWidth, height: el.clientHeight, scale: 2 });
      });
    });
  }

  function metricsRows(table, metrics) {
    const labels = { chi2: "χ²", chi2_free: "χ² free", llk: "log-likelihood", llk_free: "log-likelihood free",
      mode1_fraction: "first-mode weight of the kept runs", prtf_resolution_pixel: "PRTF resolution (pixels)",
      prtf_resolution_m: "PRTF half-period resolution (m)", object_pixel_size_m: "object pixel size (m)",
      psf_fwhm_px: "partial-coherence PSF, FWHM (pixels)", chi2_coherent: "χ² without the PSF",
      chi2_free_coherent: "χ² free without the PSF" };
    table.innerHTML = "";
    Object.entries(metrics || {}).forEach(([k, v]) => {
      if (typeof v === "object" && v !== null) return;
      const tr = document.createElement("tr");
      tr.innerHTML = `<th></th><td class="num"></td>`;
      tr.firstChild.textContent = labels[k] || k;
      tr.lastChild.textContent = typeof v === "number" ? formatNumber(v) : v === null ? "—" : String(v);
      table.appendChild(tr);
    });
  }

  /* Say under a figure how positions are labelled (figures.units_info: unit, voxel size, note). */
  function unitsNote(el, units) {
    if (!el) return;
    el.textContent = units ? units.note : "";
    el.classList.toggle("warning", !!units && units.unit !== "nm");
  }

  return { AXES, PLOT_CONFIG, unitsNote, csrfToken, getJSON, readJSON, post, formatSeconds, formatNumber, decodeVolume, sliceVolume,
    makeSliders, SliceViewer, bindPngButtons, metricsRows };
})();
