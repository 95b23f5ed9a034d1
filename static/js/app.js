/* Small behaviours of the dashboard, kept out of the pages so that the Content-Security-Policy needs no
   inline script: a <select data-autosubmit> submits its form when it changes. */
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLSelectElement && field.hasAttribute("data-autosubmit") && field.form) field.form.submit();
});
