// Asks before a destructive form is submitted: any form with a
// `data-confirm` message. Without script the server-side checks (such as
// typing the slug to delete a tenant) still apply.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var message = form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
