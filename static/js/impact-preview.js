/* Settings impact preview (SPEC §17 W1) on the settings change forms, kept out of the page so that the
   Content-Security-Policy needs no inline script.

   - htmx would add its indicator styles inline, which the policy refuses: switched off before htmx starts
     (this file loads after htmx and before the page is ready).
   - A preview describes the form's values when it was asked for. Once a field changes, it no longer
     describes what a save would do: it is marked out of date and no longer kept with the save. */
if (window.htmx) window.htmx.config.includeIndicatorStyles = false;

document.addEventListener("change", (event) => {
  const field = event.target;
  if (!(field instanceof Element) || !field.form) return;
  const result = field.form.querySelector("[data-impact-result]");
  if (!result || result.contains(field)) return;
  const kept = result.querySelector('input[name="_impact_preview"]');
  if (kept) kept.remove();
  result.classList.add("impact-preview-stale");
  const note = result.querySelector("[data-impact-stale]");
  if (note) note.hidden = false;
});
