// Passkeys: the authenticator_webauthn (create) and authenticator_validate
// (get) pages. The button asks the browser for a passkey with the options the
// page carries in <script type="application/json" id="webauthn-options">,
// writes the answer as JSON (binary fields base64url, as go-webauthn reads
// them) into the form's hidden credential field and submits the form. Served
// from the binary under the flow pages' CSP (script-src 'self'; no inline
// script). A JSON client calls the WebAuthn API its own way.
(function () {
  "use strict";
  var box = document.querySelector("[data-webauthn]");
  var data = document.getElementById("webauthn-options");
  var field = document.querySelector('form input[name="credential"]');
  if (!box || !data || !field) {
    return;
  }
  var mode = box.getAttribute("data-webauthn");
  var button = box.querySelector("button");
  var error = box.querySelector(".webauthn-error");

  function fail(text) {
    error.textContent = text;
    error.hidden = false;
    button.disabled = false;
  }

  if (!window.PublicKeyCredential || !navigator.credentials) {
    fail("This browser cannot use passkeys.");
    button.hidden = false;
    button.disabled = true;
    return;
  }

  function fromB64(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) {
      s += "=";
    }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function toB64(buf) {
    var bytes = new Uint8Array(buf);
    var s = "";
    for (var i = 0; i < bytes.length; i++) {
      s += String.fromCharCode(bytes[i]);
    }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // options parses a fresh copy of the options for each try: the browser
  // takes ArrayBuffers where the JSON has base64url strings.
  function options() {
    var o = JSON.parse(data.textContent).publicKey;
    o.challenge = fromB64(o.challenge);
    if (o.user) {
      o.user.id = fromB64(o.user.id);
    }
    [o.excludeCredentials, o.allowCredentials].forEach(function (list) {
      (list || []).forEach(function (c) {
        c.id = fromB64(c.id);
      });
    });
    return o;
  }

  function encode(cred) {
    var r = cred.response;
    var out = {
      id: cred.id,
      rawId: toB64(cred.rawId),
      type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64(r.clientDataJSON) }
    };
    if (cred.authenticatorAttachment) {
      out.authenticatorAttachment = cred.authenticatorAttachment;
    }
    if (r.attestationObject) {
      out.response.attestationObject = toB64(r.attestationObject);
      if (r.getTransports) {
        out.response.transports = r.getTransports();
      }
    } else {
      out.response.authenticatorData = toB64(r.authenticatorData);
      out.response.signature = toB64(r.signature);
      if (r.userHandle) {
        out.response.userHandle = toB64(r.userHandle);
      }
    }
    return JSON.stringify(out);
  }

  function refusal(e) {
    switch (e && e.name) {
      case "NotAllowedError":
        return "The passkey request was cancelled or timed out. Try again.";
      case "InvalidStateError":
        return "This authenticator already holds a passkey for this account.";
      case "SecurityError":
        return "Passkeys cannot be used at this site address.";
      case "NotSupportedError":
        return "This authenticator cannot make the kind of passkey this site asks for.";
    }
    return "The browser refused the passkey request" + (e && e.message ? ": " + e.message : ".");
  }

  function start() {
    error.hidden = true;
    button.disabled = true;
    var p;
    try {
      p = mode === "create" ? navigator.credentials.create({ publicKey: options() })
        : navigator.credentials.get({ publicKey: options() });
    } catch (e) {
      fail(refusal(e));
      return;
    }
    p.then(function (cred) {
      if (!cred) {
        fail(refusal(null));
        return;
      }
      field.value = encode(cred);
      field.form.submit();
    }, function (e) {
      fail(refusal(e));
    });
  }

  button.hidden = false;
  button.addEventListener("click", start);
})();
