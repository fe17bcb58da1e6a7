// The captcha stage's siteverify widget: Turnstile, hCaptcha and reCAPTCHA each
// put their token in a field of their own inside the widget (Turnstile's is
// named "token" by data-response-field-name, but it sits outside the form). On
// submit this copies it into the form's token field. Served from the binary,
// under the page's CSP (no inline script).
(function () {
  "use strict";
  var widget = document.getElementById("captcha-widget");
  var form = widget && widget.parentNode.querySelector("form");
  var field = form && form.querySelector('input[name="token"]');
  if (!field) {
    return;
  }
  form.addEventListener("submit", function () {
    var answers = widget.querySelectorAll(
      'input[name="token"], [name="cf-turnstile-response"], [name="h-captcha-response"], [name="g-recaptcha-response"]'
    );
    for (var i = 0; i < answers.length; i++) {
      if (answers[i].value) {
        field.value = answers[i].value;
        return;
      }
    }
  });
})();
