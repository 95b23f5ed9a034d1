/* Dunning settings (admin, S1): redraw the preset's schedule as soon as a preset is chosen, before saving.
   The searchable drop-down is Django's select2 autocomplete, which announces a choice as a jQuery "change"
   event that htmx (listening with addEventListener) does not see, so it is passed on as "preset-chosen";
   the schedule's container asks for the new table with hx-get (no inline script: Content-Security-Policy). */
"use strict";
// htmx would add its indicator styles as an inline <style>, which the Content-Security-Policy refuses.
window.htmx.config.includeIndicatorStyles = false;
document.addEventListener("DOMContentLoaded", () => {
  const select = document.getElementById("id_preset");
  if (!select || !document.getElementById("preset-schedule")) return;
  window.django.jQuery(select).on("change", () => window.htmx.trigger(select, "preset-chosen"));
});
