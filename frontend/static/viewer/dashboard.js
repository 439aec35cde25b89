/* Dashboard: filters apply at once and the job table refreshes from jobs.json
 * (every 2 s while a job is queued or running, every 10 s otherwise). */
"use strict";

(() => {
  const form = document.getElementById("filters");
  const table = document.getElementById("jobs-table");
  if (!form || !table) return;
  const tbody = table.querySelector("tbody");
  const compareLink = document.getElementById("compare-selected");
  const picked = new Set();
  let timer = null;

  function updateCompare() {
    const ids = [...picked].slice(0, 3);
    compareLink.textContent = `Compare selected (${picked.size})`;
    compareLink.href = `${compareLink.dataset.base}?jobs=${ids.join(",")}`;
    const ok = picked.size >= 2 && picked.size <= 3;
    compareLink.setAttribute("aria-disabled", ok ? "false" : "true");
    compareLink.classList.toggle("primary", ok);
  }

  tbody.addEventListener("change", (ev) => {
    if (!ev.target.classList.contains("pick")) return;
    if (ev.target.checked) picked.add(ev.target.value); else picked.delete(ev.target.value);
    updateCompare();
  });
  compareLink.addEventListener("click", (ev) => {
    if (compareLink.getAttribute("aria-disabled") === "true") { ev.preventDefault(); compareLink.textContent = "select 2 or 3 jobs"; }
  });

  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    return td;
  }

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function row(r) {
    const tr = document.createElement("tr");
    tr.dataset.job = r.id;
    tr.className = `status-${r.status}`;
    const first = document.createElement("span");
    const pick = document.createElement("input");
    pick.type = "checkbox";
    pick.className = "pick";
    pick.value = r.id;
    pick.checked = picked.has(String(r.id));
    pick.setAttribute("aria-label", `select job ${r.id}`);
    first.append(pick, " ", link(r.url, `#${r.id}`));
    tr.appendChild(cell(first));
    tr.appendChild(cell(r.dataset_url ? link(r.dataset_url, r.dataset) : "—"));
    tr.appendChild(cell(r.kind));
    const badge = document.createElement("span");
    badge.className = `badge ${r.status}`;
    badge.textContent = r.status;
    tr.appendChild(cell(badge));
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.title = r.stage || "";
    bar.innerHTML = `<div style="width:${Math.round(100 * r.progress)}%"></div>`;
    tr.appendChild(cell(bar));
    tr.appendChild(cell(r.owner));
    tr.appendChild(cell(r.model_version || "—"));
    tr.appendChild(cell(CDI.formatNumber(r.chi2), "num"));
    tr.appendChild(cell(r.duration_s === null ? "—" : CDI.formatSeconds(r.duration_s), "num"));
    return tr;
  }

  async function refresh() {
    clearTimeout(timer);
    const query = new URLSearchParams(new FormData(form));
    for (const [k, v] of [...query.entries()]) if (!v) query.delete(k);
    history.replaceState(null, "", query.toString() ? `?${query}` : location.pathname);
    let body;
    try {
      body = await CDI.getJSON(`${table.dataset.endpoint}?${query}`);
    } catch (e) {
      document.getElementById("live-note").textContent = `update failed: ${e.message}`;
      timer = setTimeout(refresh, 10000);
      return;
    }
    tbody.replaceChildren(...body.jobs.map(row));
    if (!body.jobs.length) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      tr.appendChild(cell("No jobs match."));
      tr.firstChild.colSpan = 9;
      tbody.appendChild(tr);
    }
    document.getElementById("live-note").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.rendered = "1";
    timer = setTimeout(refresh, body.active ? 2000 : 10000);
  }

  form.addEventListener("change", refresh);
  form.addEventListener("input", (ev) => { if (ev.target.type === "search") { clearTimeout(timer); timer = setTimeout(refresh, 300); } });
  form.addEventListener("submit", (ev) => { ev.preventDefault(); refresh(); });
  refresh();
})();
