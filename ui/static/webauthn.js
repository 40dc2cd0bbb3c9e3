// Keygate UI: passkeys (WebAuthn). Loaded only by the pages that offer
// them; buttons carry data-webauthn and stay hidden without WebAuthn.
//   login   sign in with a passkey alone (the sign-in page)
//   mfa     the second step of a sign-in
//   enroll  add a passkey to finish a sign-in the policy held back
//   register add a passkey on the account page (CSRF token in data-csrf)
// The pending sign-in travels in Keygate's HttpOnly cookie; this script
// never sees it.
"use strict";

(function () {
  function b64urlToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function bufToB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = b64urlToBuf(pk.challenge);
    pk.user.id = b64urlToBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return { publicKey: pk };
  }
  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = b64urlToBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return { publicKey: pk };
  }
  function credentialJSON(c) {
    var r = c.response, out = { id: c.id, rawId: bufToB64url(c.rawId), type: c.type,
      authenticatorAttachment: c.authenticatorAttachment || undefined,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {}, response: {} };
    out.response.clientDataJSON = bufToB64url(r.clientDataJSON);
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64url(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = bufToB64url(r.authenticatorData);
      out.response.signature = bufToB64url(r.signature);
      if (r.userHandle) { out.response.userHandle = bufToB64url(r.userHandle); }
    }
    return out;
  }
  function post(url, body, csrf) {
    var headers = { "Content-Type": "application/json" };
    if (csrf) { headers["X-CSRF-Token"] = csrf; }
    return fetch(url, { method: "POST", credentials: "same-origin", headers: headers, body: JSON.stringify(body || {}) })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (j) {
          if (!res.ok) {
            throw new Error((j.error && j.error.message) || ("Request failed (" + res.status + ")."));
          }
          return j;
        });
      });
  }
  function nameOf(btn) {
    var el = document.getElementById(btn.getAttribute("data-name") || "");
    return el ? el.value : "";
  }

  var flows = {
    login: function (btn) {
      return post("/v2/login/mfa/webauthn?passwordless=true", {}).then(function (b) {
        return navigator.credentials.get(requestOptions(b.options)).then(function (c) {
          return post("/v2/login/mfa", { mfa_token: b.mfa_token, webauthn: credentialJSON(c) });
        });
      }).then(function () { return btn.getAttribute("data-next") || "/ui/"; });
    },
    mfa: function (btn) {
      return post("/v2/login/mfa/webauthn", {}).then(function (b) {
        return navigator.credentials.get(requestOptions(b.options));
      }).then(function (c) {
        return post("/v2/login/mfa", { webauthn: credentialJSON(c) });
      }).then(function () { return btn.getAttribute("data-next") || "/ui/"; });
    },
    enroll: function (btn) {
      return post("/v2/login/mfa/webauthn/register", {}).then(function (b) {
        return navigator.credentials.create(creationOptions(b.options));
      }).then(function (c) {
        return post("/v2/login/mfa/webauthn/register/finish", { name: nameOf(btn), credential: credentialJSON(c) });
      }).then(function (res) { return showCodes(res.recovery_codes, "/ui/"); });
    },
    register: function (btn) {
      var csrf = btn.getAttribute("data-csrf");
      // A passkey signs in on its own, so adding one is proven with a
      // current code, or the password when there is no second factor.
      var proof = {}, el = document.getElementById(btn.getAttribute("data-proof") || "");
      if (el) { proof[el.name] = el.value; }
      return post("/user/mfa/webauthn/register", proof, csrf).then(function (b) {
        return navigator.credentials.create(creationOptions(b.options)).then(function (c) {
          return post("/user/mfa/webauthn/register/finish", { mfa_token: b.mfa_token, name: nameOf(btn), credential: credentialJSON(c) }, csrf);
        });
      }).then(function (res) { return showCodes(res.recovery_codes, "/ui/account/security"); });
    }
  };

  // showCodes shows first recovery codes in place (they exist only in
  // this answer), else goes on.
  function showCodes(codes, next) {
    if (!codes || !codes.length) { return next; }
    var main = document.getElementById("main");
    var sec = document.createElement("section");
    sec.className = "card narrow";
    var h = document.createElement("h1");
    h.textContent = "Save your recovery codes";
    var p = document.createElement("div");
    p.className = "alert warn";
    p.textContent = "Save these recovery codes now — you will not see them again. Each signs you in once if you lose your passkey.";
    var ul = document.createElement("ul");
    ul.className = "codes mono";
    ul.id = "recovery-codes";
    codes.forEach(function (c) { var li = document.createElement("li"); li.textContent = c; ul.appendChild(li); });
    var a = document.createElement("a");
    a.className = "btn primary";
    a.id = "continue";
    a.href = next;
    a.textContent = "Continue";
    sec.appendChild(h); sec.appendChild(p); sec.appendChild(ul); sec.appendChild(a);
    main.replaceChildren(sec);
    return null;
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.PublicKeyCredential || !navigator.credentials) { return; }
    var status = document.getElementById("webauthn-error");
    document.querySelectorAll("[data-webauthn]").forEach(function (btn) {
      var flow = flows[btn.getAttribute("data-webauthn")];
      if (!flow) { return; }
      btn.hidden = false;
      btn.addEventListener("click", function () {
        btn.disabled = true;
        if (status) { status.textContent = ""; }
        flow(btn).then(function (next) {
          if (next) { window.location.assign(next); }
        }, function (err) {
          btn.disabled = false;
          if (status) {
            status.textContent = err && err.name === "NotAllowedError" ? "The passkey was not used (cancelled or timed out)." : (err && err.message) || "That did not work.";
          }
        });
      });
    });
  });
})();
