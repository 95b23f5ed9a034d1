// The payment form, when the patient comes back to it with Back or Forward (after a payment, from the
// receipt): browsers restore the fields typed before, the card number and the old amount among them. The
// form starts again from what the server sent (the amount due now), so nothing is paid twice by accident.
(function () {
  "use strict";
  window.addEventListener("pageshow", function (event) {
    var navigation = performance.getEntriesByType("navigation")[0];
    if (event.persisted || (navigation && navigation.type === "back_forward")) {
      document.querySelectorAll("form[data-reset-on-back]").forEach(function (form) {
        form.reset();
      });
    }
  });
})();
