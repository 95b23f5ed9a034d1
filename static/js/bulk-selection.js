/* B2 selection across pages. "Select all" keeps the deselected ids (sent as `excluded`: the server sends to
   every guarantor still on the list except them); otherwise the picked ids (sent as `selected`). Paging swaps
   only #eligible (htmx), so this state and the hidden inputs that carry it survive. */
(() => {
  "use strict";
  const form = document.getElementById("bulk-form");
  if (!form) return;
  const all = document.getElementById("select-all");
  const state = document.getElementById("selection-state");
  const status = document.getElementById("selection-count");
  const excluded = new Set();
  const picked = new Set();
  for (const input of state.querySelectorAll("input")) (input.name === "excluded" ? excluded : picked).add(input.value);
  const rows = () => Array.from(form.querySelectorAll('#eligible input[type="checkbox"][name="selected"]'));
  const total = () => Number((document.getElementById("eligible") || form).dataset.total) || 0;
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

  function render() {
    const visible = new Set(rows().map((row) => row.value));
    const carried = all.checked
      ? [...excluded].map((id) => ["excluded", id])
      : [...picked].filter((id) => !visible.has(id)).map((id) => ["selected", id]);
    state.replaceChildren(...carried.map(([name, value]) =>
      Object.assign(document.createElement("input"), {type: "hidden", name, value})));
    for (const row of rows()) row.checked = all.checked ? !excluded.has(row.value) : picked.has(row.value);
    all.indeterminate = all.checked && excluded.size > 0;
    if (all.checked) {
      const n = Math.max(total() - excluded.size, 0);
      status.textContent = excluded.size
        ? `${plural(n, "guarantor")} selected: everyone on every page except ${excluded.size} deselected.`
        : `All ${plural(total(), "eligible guarantor")} selected, on every page.`;
    } else {
      status.textContent = picked.size ? `${picked.size} selected.` : "Nothing selected.";
    }
  }

  all.addEventListener("change", () => { excluded.clear(); picked.clear(); render(); });
  form.addEventListener("change", (event) => {
    const row = event.target;
    if (row === all || row.name !== "selected" || row.type !== "checkbox") return;
    const set = all.checked ? excluded : picked;
    if (row.checked === all.checked) set.delete(row.value); else set.add(row.value);
    render();
  });
  // Enter in a snooze field snoozes (the form's default button is disabled so that Enter never sends).
  form.querySelector(".snooze-bar").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.tagName === "INPUT") {
      event.preventDefault();
      form.querySelector(".snooze-bar button[type=submit]").click();
    }
  });
  // One click, one submission: the buttons go inactive once the browser has taken the form.
  form.addEventListener("submit", () => setTimeout(() => {
    for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = true;
  }, 0));
  window.addEventListener("pageshow", () => {
    for (const button of form.querySelectorAll("button[type=submit]:not([hidden])")) button.disabled = false;
  });
  document.addEventListener("htmx:load", render);
  render();
})();
