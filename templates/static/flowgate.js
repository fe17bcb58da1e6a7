// flowgate's only script: the show/hide control of a password field (a password
// stage with allow_show_password). It is served from the binary under the flow
// pages' CSP (script-src 'self'; no inline script, no inline handlers). Without
// script the control stays hidden and the page works as before.
(function () {
  "use strict";
  var toggles = document.querySelectorAll("button[data-reveal]");
  Array.prototype.forEach.call(toggles, function (button) {
    var input = document.getElementById(button.getAttribute("data-reveal"));
    if (!input) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      button.setAttribute("aria-pressed", show ? "true" : "false");
      button.textContent = show ? "Hide password" : "Show password";
      input.focus();
    });
    // Sent as a password field again, so the browser does not keep it among
    // the values it remembers for text fields.
    if (input.form) {
      input.form.addEventListener("submit", function () {
        input.type = "password";
      });
    }
  });
})();
