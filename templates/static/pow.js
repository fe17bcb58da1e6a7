// The captcha stage's proof of work: find a nonce such that
// SHA-256(challenge + ":" + nonce) starts with `difficulty` zero bits, put it in
// the form's token field and submit. Served from the binary and loaded only on
// a proof-of-work page, under the flow pages' CSP (script-src 'self'; no inline
// script). A JSON client solves the same puzzle its own way.
(function () {
  "use strict";
  var status = document.getElementById("pow-status");
  if (!status || !window.crypto || !window.crypto.subtle) {
    return;
  }
  var challenge = status.getAttribute("data-pow-challenge");
  var difficulty = parseInt(status.getAttribute("data-pow-difficulty"), 10);
  var form = status.parentNode.querySelector("form");
  var field = form && form.querySelector('input[name="token"]');
  var button = form && form.querySelector('button[type="submit"]');
  if (!challenge || !(difficulty > 0) || !field) {
    return;
  }
  var encoder = new TextEncoder();
  var batch = 256; // digests in flight at once: crypto.subtle is asynchronous

  function zeroBits(buf) {
    var bytes = new Uint8Array(buf);
    var n = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) {
        n += 8;
        continue;
      }
      return n + Math.clz32(bytes[i]) - 24;
    }
    return n;
  }

  function search(start) {
    var digests = [];
    for (var i = 0; i < batch; i++) {
      digests.push(crypto.subtle.digest("SHA-256", encoder.encode(challenge + ":" + (start + i))));
    }
    return Promise.all(digests).then(function (sums) {
      for (var i = 0; i < sums.length; i++) {
        if (zeroBits(sums[i]) >= difficulty) {
          return String(start + i);
        }
      }
      return search(start + batch);
    });
  }

  if (button) {
    button.disabled = true;
  }
  search(0).then(function (nonce) {
    field.value = nonce;
    status.textContent = "Done.";
    if (button) {
      button.disabled = false;
    }
    // After a refused answer, wait for the visitor rather than loop.
    if (!status.hasAttribute("data-pow-retry")) {
      form.submit();
    }
  });
})();
