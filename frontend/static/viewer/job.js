/* Job page: poll status.json while the job runs (progress, stage, ETA, live error curve, log),
 * then fetch figures.json once and draw the result viewer. Sets body[data-rendered] after the
 * first status render and body[data-result-rendered] once every result figure is drawn. */
"use strict";

(() => {
  const root = document.getElementById("job");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 1000;
  let resultRequested = false;

  function liveFigure(curves) {
    const labels = { chi2: "χ²", chi2_free: "χ² free", llk: "log-likelihood", loss: "loss", val_loss: "validation loss" };
    const isError = (name) => /^(chi2|llk|err|loss|train_loss|val_loss)/.test(name);  // same rule as figures.py
    const data = Object.entries(curves || {})
      .filter(([name, ys]) => isError(name) && Array.isArray(ys) && ys.length)
      .map(([name, ys]) => ({ type: "scatter", mode: "lines", connectgaps: true, name: labels[name] || name, x: ys.map((_, i) => i), y: ys }));
    const positive = data.every((t) => t.y.every((v) => v === null || v > 0));
    const layout = {
      height: 300, margin: { l: 60, r: 10, t: 10, b: 40 }, legend: { orientation: "h", y: -0.25 },
      xaxis: { title: { text: "progress report (decimated iterations)" } },
      yaxis: { title: { text: "error (dimensionless)" }, type: positive && data.length ? "log" : "linear", exponentformat: "power" },
      annotations: data.length ? [] : [{ text: "no error values reported yet", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }],
      uirevision: "live",
    };
    return { data, layout };
  }

  /* Lineage: the pipeline's steps (child and grandchild jobs) with their live status. */
  function renderSteps(steps) {
    const box = $("steps");
    box.replaceChildren();
    steps.forEach((step) => {
      const a = document.createElement("a");
      a.href = step.url;
      a.textContent = `#${step.id} ${step.kind}`;
      const badge = document.createElement("span");
      badge.className = `badge ${step.status}`;
      badge.textContent = step.status;
      box.append(" · step ", a, " ", badge);
    });
  }

  function renderStatus(s) {
    const badge = $("status-badge");
    badge.textContent = s.status;
    badge.className = `badge ${s.status}`;
    root.dataset.status = s.status;
    const pct = Math.round(100 * (s.progress || 0));
    $("progress-fill").style.width = `${pct}%`;
    $("progress-pct").textContent = `${pct} %`;
    $("stage").textContent = s.stage || "—";
    $("eta").textContent = s.finished ? (s.duration_s !== null ? `took ${CDI.formatSeconds(s.duration_s)}` : "")
      : s.eta_s !== null ? `ETA ${CDI.formatSeconds(s.eta_s)}` : "";
    $("latest-values").textContent = Object.entries(s.latest_values || {})
      .slice(0, 6).map(([k, v]) => `${k} ${CDI.formatNumber(v)}`).join(" · ");
    const log = $("log-tail");
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = s.log_tail || "";
    if (atBottom) log.scrollTop = log.scrollHeight;
    const err = $("job-error");
    err.hidden = !s.error_message;
    err.textContent = s.error_message || "";
    const cancel = $("cancel-button");
    cancel.hidden = s.finished;
    if (s.cancel_requested && !s.finished) { cancel.disabled = true; cancel.textContent = "Cancelling…"; }
    const fig = liveFigure(s.curves);
    Plotly.react("plot-live", fig.data, fig.layout, CDI.PLOT_CONFIG);
    document.querySelectorAll(".download").forEach((a) => { a.hidden = !s.has_result; });
    renderSteps(s.steps || []);
    const compare = $("compare-link");
    compare.hidden = !s.compare_url;
    if (s.compare_url) compare.href = s.compare_url;
    document.body.dataset.rendered = "1";
  }

  function drawIsosurface(iso, isoUrl) {
    $("panel-iso").hidden = false;
    const info = (meta) => `${meta.n_vertices} vertices${meta.step_size > 1 ? `, step ${meta.step_size}` : ""}`;
    $("iso-info").textContent = info(iso.meta);
    const slider = $("iso-threshold");
    const out = $("iso-threshold-value");
    let timer = null;
    slider.addEventListener("input", () => {
      out.textContent = Number(slider.value).toFixed(2);
      clearTimeout(timer);
      timer = setTimeout(async () => {
        $("iso-info").textContent = "computing…";
        try {
          const fig = await CDI.getJSON(`${isoUrl}${isoUrl.includes("?") ? "&" : "?"}threshold=${slider.value}`);
          await Plotly.react("plot-iso", fig.data, fig.layout, CDI.PLOT_CONFIG);
          $("iso-info").textContent = info(fig.meta);
        } catch (e) { $("iso-info").textContent = e.message; }
      }, 250);
    });
    return Plotly.newPlot("plot-iso", iso.data, bareScene(iso.layout), CDI.PLOT_CONFIG);
  }

  /* The 3D layout without tick labels and axis titles: plotly.js turns every 3D label into
   * triangles on the CPU, ~0.2-0.3 s on this page; they are added by labelScene once the
   * first screen is drawn. */
  function bareScene(layout) {
    const scene = Object.assign({}, layout.scene);
    ["xaxis", "yaxis", "zaxis"].forEach((ax) => {
      scene[ax] = Object.assign({}, scene[ax], { showticklabels: false, title: { text: "" } });
    });
    return Object.assign({}, layout, { scene });
  }

  function labelScene(layout) {
    const update = {};
    ["xaxis", "yaxis", "zaxis"].forEach((ax) => {
      update[`scene.${ax}.showticklabels`] = true;
      update[`scene.${ax}.title.text`] = layout.scene[ax].title.text;
    });
    return Plotly.relayout("plot-iso", update);
  }

  /* The view switches reload the page with their query: "phase ramp removed" (?ramp=1), where
   * |G| is known "displacement u along G" (?field=u), and where the diffractometer geometry is
   * known "strain ε along G" (?field=strain) and "lab frame" (?frame=lab). */
  function showViewSwitches(obj) {
    const ramp = $("ramp-toggle");
    const disp = $("displacement-toggle");
    const strain = $("strain-toggle");
    const lab = $("lab-toggle");
    ramp.checked = root.dataset.ramp === "1";
    disp.checked = root.dataset.displacement === "1";
    strain.checked = root.dataset.strain === "1";
    lab.checked = root.dataset.lab === "1";
    const reload = () => {
      const field = disp.checked ? ["field=u"] : strain.checked ? ["field=strain"] : [];
      const parts = (ramp.checked ? ["ramp=1"] : []).concat(field).concat(lab.checked ? ["frame=lab"] : []);
      window.location.search = parts.length ? `?${parts.join("&")}` : "";
    };
    ramp.onchange = reload;
    // the colour is one field at a time: displacement and strain exclude each other
    disp.onchange = () => { if (disp.checked) strain.checked = false; reload(); };
    strain.onchange = () => { if (strain.checked) disp.checked = false; reload(); };
    lab.onchange = reload;
    const s = obj.strain || { available: false };
    $("strain-switch").hidden = !s.available;
    $("strain-note").textContent = s.available && s.shown ? `(${s.note})` : "";
    const f = obj.frame || { available: false };
    $("lab-switch").hidden = !f.available;
    $("lab-note").textContent = f.available ? `(${f.note})` : "";
    const r = obj.phase_ramp;
    $("ramp-values").textContent = r
      ? `(${r.map((g) => g.toFixed(3)).join(", ")} rad per ${r.length === 3 ? "voxel along z, y, x" : "pixel along y, x"})`
      : "";
    const d = obj.displacement || { available: false };
    $("displacement-switch").hidden = !d.available;
    $("displacement-note").textContent = d.available && d.shown ? `(${d.note})` : "";
    document.querySelectorAll(".field-name").forEach((el) => { el.textContent = obj.field ? obj.field.name : "phase"; });
  }

  function drawSlices(obj) {
    $("panel-object").hidden = false;
    if (obj.ndim !== 3) {
      // a 2D object has no isosurface beside it: the two images take the whole row
      $("panel-object").parentElement.classList.add("single");
      return Plotly.newPlot("plot-object", obj.slices.data, obj.slices.layout, CDI.PLOT_CONFIG);
    }
    const viewer = new CDI.SliceViewer($("plot-object"), obj.slices, [obj.amplitude, obj.phase],
      { origin: obj.origin, index: obj.index, names: ["amplitude", obj.field ? obj.field.label : "phase"] });
    CDI.makeSliders($("object-sliders"), { ranges: viewer.ranges(), values: viewer.global,
      onInput: (a, v) => viewer.setIndex(a, v) });
    return viewer.draw();
  }

  function drawDiffraction(d) {
    if (d.ndim !== 3) return [Plotly.newPlot("plot-diffraction", d.slices.data, d.slices.layout, CDI.PLOT_CONFIG)];
    const vols = [d.measured].concat(d.calculated ? [d.calculated] : []);
    const viewer = new CDI.SliceViewer($("plot-diffraction"), d.slices, vols,
      { index: d.index, names: ["measured", "calculated"], binning: d.binning });
    CDI.makeSliders($("diffraction-sliders"), { ranges: viewer.ranges(), values: viewer.global,
      onInput: (a, v) => viewer.setIndex(a, v) });
    return [viewer.draw()];
  }

  /* Milliseconds since navigation start, recorded as body[data-t-<name>] (the page-load benchmark reads them). */
  function mark(name) {
    const ms = Math.round(performance.now());
    document.body.dataset[`t${name[0].toUpperCase()}${name.slice(1)}`] = ms;
    return ms;
  }

  const nextPaint = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

  /* Draw the result in steps. First what the user sees first (isosurface, object slices, error
   * curve, PRTF, metrics): body[data-first-render-ms]. Then, after a paint, the 3D axis labels
   * and the panel below the fold (measured vs calculated diffraction):
   * body[data-result-rendered-ms]. */
  async function loadResult() {
    if (resultRequested) return;
    resultRequested = true;
    const box = $("result");
    const loading = box.querySelector(".loading");
    let bundle;
    try {
      bundle = await (window.CDI_PREFETCH ? CDI.readJSON(await window.CDI_PREFETCH) : CDI.getJSON(root.dataset.figuresUrl));
    } catch (e) {
      box.hidden = false;
      loading.textContent = `Could not load the result: ${e.message}`;
      loading.className = "error";
      return;
    }
    mark("data");
    const plots = [];
    if (bundle.loss) {
      $("panel-loss").hidden = false;
      plots.push(Plotly.newPlot("plot-loss", bundle.loss.data, bundle.loss.layout, CDI.PLOT_CONFIG));
    }
    const r = bundle.result;
    if (r) {
      box.hidden = false;
      loading.remove();
      if (r.object.isosurface) $("panel-iso").hidden = false;  // keep the layout stable
      if (r.diffraction) $("panel-diffraction").hidden = false;
      $("panel-metrics").hidden = false;
      CDI.metricsRows($("metrics-table"), r.metrics);
      $("algorithm-text").textContent = r.algorithm ? `algorithm: ${r.algorithm}` : "";
      CDI.unitsNote($("units-note"), r.object.units);
      $("field-stats").textContent = r.object.field_stats ? r.object.field_stats.text : "";
      showViewSwitches(r.object);
      plots.push(drawSlices(r.object));
      if (r.errors) {
        $("panel-errors").hidden = false;
        if (r.errors.data.length) {  // the full curves replace the live ones
          $("panel-live").hidden = true;
          $("panel-live").parentElement.classList.add("single");
        }
        plots.push(Plotly.newPlot("plot-errors", r.errors.data, r.errors.layout, CDI.PLOT_CONFIG));
      }
      if (r.prtf) {
        $("panel-prtf").hidden = false;
        plots.push(Plotly.newPlot("plot-prtf", r.prtf.data, r.prtf.layout, CDI.PLOT_CONFIG));
      }
      if (r.psf) {
        $("panel-psf").hidden = false;
        plots.push(Plotly.newPlot("plot-psf", r.psf.data, r.psf.layout, CDI.PLOT_CONFIG));
      }
    } else if (!bundle.loss) {
      box.hidden = true;
    }
    await Promise.all(plots);
    mark("figures2d");
    if (r && r.object.isosurface) await drawIsosurface(r.object.isosurface, root.dataset.isoUrl);
    document.body.dataset.firstRenderMs = mark("isosurface");
    if (r && (r.diffraction || r.object.isosurface)) await nextPaint();  // show the first screen first
    if (r && r.object.isosurface) await labelScene(r.object.isosurface.layout);
    mark("labels");
    if (r && r.diffraction) await Promise.all(drawDiffraction(r.diffraction));
    CDI.bindPngButtons();
    document.body.dataset.resultRenderedMs = mark("diffraction");
    document.body.dataset.resultRendered = "1";
  }

  async function poll() {
    let s;
    try {
      s = await CDI.getJSON(root.dataset.statusUrl);
    } catch (e) {
      $("stage").textContent = `status unavailable (${e.message}); retrying`;
      setTimeout(poll, 3 * POLL_MS);
      return;
    }
    renderStatus(s);
    if (s.finished) {
      if (s.status === "succeeded") loadResult();
      else document.body.dataset.resultRendered = "none";
    } else {
      setTimeout(poll, POLL_MS);
    }
  }

  $("cancel-button").addEventListener("click", async (ev) => {
    const button = ev.currentTarget;
    button.disabled = true;
    button.textContent = "Cancelling…";
    $("cancel-error").hidden = true;
    try {
      await CDI.post(root.dataset.cancelUrl);
    } catch (e) {
      button.disabled = false;
      button.textContent = "Cancel";
      $("cancel-error").hidden = false;
      $("cancel-error").textContent = `cancel failed (${e.message}); try again`;
    }
  });

  CDI.bindPngButtons();
  root.dataset.ready = "1";  // handlers bound: the buttons work from now on (tests wait for it)
  if (root.dataset.status === "succeeded") loadResult();  // start the figures at once, in parallel
  poll();
})();
