/* Small behaviours of the dashboard, kept out of the pages so that the Content-Security-Policy needs no
   inline script: a <select data-autosubmit> submits its form when it changes. */
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLSelectElement && field.hasAttribute("data-autosubmit") && field.form) field.form.submit();
});

/* A checkbox with data-check-all="NAME" ticks or unticks every checkbox NAME of its form; an element with
   data-count-of="NAME" says how many of them are ticked (data-none, data-some with {n}). */
function updateCounts(form) {
  for (const counter of form.querySelectorAll("[data-count-of]")) {
    const n = form.querySelectorAll(`input[type="checkbox"][name="${counter.dataset.countOf}"]:checked`).length;
    counter.textContent = n ? counter.dataset.some.replace("{n}", n) : counter.dataset.none;
  }
}
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || box.type !== "checkbox" || !box.form) return;
  if (box.dataset.checkAll) {
    for (const row of box.form.querySelectorAll(`input[type="checkbox"][name="${box.dataset.checkAll}"]`)) row.checked = box.checked;
  }
  if (box.form.querySelector("[data-count-of]")) updateCounts(box.form);
});
