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
    const count = all.checked ? Math.max(total() - excluded.size, 0) : picked.size;
    if (snoozeButton) snoozeButton.textContent = count ? `Snooze ${count} selected` : "Snooze selected";
  }

  // B3: a row's clock button opens the snooze dialog for that guarantor. The dialog's form is its own (the
  // fields at the top are not read); the selection made for Send goes with it, so that the page comes back
  // with it.
  const snoozeButton = document.getElementById("snooze-button");
  const dialog = document.getElementById("row-snooze-dialog");
  const dialogForm = document.getElementById("row-snooze-form");
  function selectionInputs() {
    const entries = all.checked
      ? [["select_all", "1"], ...[...excluded].map((id) => ["excluded", id])]
      : [...picked].map((id) => ["selected", id]);
    return entries.map(([name, value]) => Object.assign(document.createElement("input"), {type: "hidden", name, value}));
  }
  if (dialog && dialogForm) {
    form.addEventListener("click", (event) => {
      const button = event.target instanceof Element && event.target.closest("[data-snooze-row]");
      if (!button) return;
      dialogForm.elements.namedItem("snooze_one").value = button.dataset.snoozeRow;
      dialog.querySelector("[data-snooze-name]").textContent = button.dataset.snoozeName;
      for (const error of dialog.querySelectorAll(".error, .field-error")) error.remove();
      dialog.showModal();
      dialogForm.elements.namedItem("until").focus();
    });
    dialogForm.addEventListener("submit", (event) => {
      if (event.submitter && event.submitter.getAttribute("formmethod") === "dialog") return;
      dialogForm.querySelector("[data-selection-copy]").replaceChildren(...selectionInputs());
    });
    if (dialog.hasAttribute("data-open")) dialog.showModal();
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
