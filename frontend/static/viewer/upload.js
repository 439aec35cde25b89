/* Upload page: drag and drop (or choose) a file, send it with XHR showing upload progress,
 * then open the dataset page; a refused file shows the library's message. */
"use strict";

(() => {
  const form = document.getElementById("upload-form");
  const zone = document.getElementById("drop-zone");
  const input = document.getElementById("file-input");
  const bar = document.getElementById("upload-bar");
  const status = document.getElementById("upload-status");
  const error = document.getElementById("upload-error");
  if (!form) return;

  function fail(message) {
    error.hidden = false;
    error.textContent = message;
    status.textContent = "";
    bar.hidden = true;
    zone.classList.remove("busy");
  }

  function send(file) {
    error.hidden = true;
    document.getElementById("file-name").textContent = `${file.name} (${(file.size / 1e6).toFixed(2)} MB)`;
    const data = new FormData(form);
    data.set("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRFToken", CDI.csrfToken());
    bar.hidden = false;
    zone.classList.add("busy");
    const fill = bar.firstElementChild;
    xhr.upload.addEventListener("progress", (ev) => {
      if (!ev.lengthComputable) return;
      const pct = Math.round((100 * ev.loaded) / ev.total);
      fill.style.width = `${pct}%`;
      status.textContent = pct < 100 ? `uploading… ${pct} %` : "checking the file…";
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = { error: xhr.responseText || xhr.statusText }; }
      if (xhr.status >= 200 && xhr.status < 300 && body.url) {
        status.textContent = body.duplicate ? "already uploaded: opening it" : "done: opening the dataset";
        window.location.assign(body.url);
      } else {
        fail(body.error || body.detail || `upload refused (${xhr.status})`);
      }
    });
    xhr.addEventListener("error", () => fail("the upload failed: network error"));
    xhr.send(data);
  }

  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (ev) => { ev.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, (ev) => { ev.preventDefault(); zone.classList.remove("over"); }));
  zone.addEventListener("drop", (ev) => { if (ev.dataTransfer.files.length) send(ev.dataTransfer.files[0]); });
  zone.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") input.click(); });
  input.addEventListener("change", () => { if (input.files.length) send(input.files[0]); });
  form.addEventListener("submit", (ev) => { ev.preventDefault(); if (input.files.length) send(input.files[0]); });
  document.body.dataset.rendered = "1";
})();
