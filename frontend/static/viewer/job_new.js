/* Submit form: a preset fills the parameter fields (which stay editable). */
"use strict";

(() => {
  const select = document.getElementById("preset");
  const data = document.getElementById("presets-data");
  if (!select || !data) return;
  const presets = JSON.parse(data.textContent);
  select.addEventListener("change", () => {
    const values = presets[select.value] || {};
    Object.entries(values).forEach(([name, value]) => {
      const field = document.querySelector(`#job-form [name="${name}"]`);
      if (!field) return;
      if (field.type === "checkbox") field.checked = Boolean(value); else field.value = value;
    });
  });
})();
