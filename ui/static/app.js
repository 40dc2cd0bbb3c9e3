// Keygate UI: the only script. Pages work without it; it adds a copy
// button to secrets, asks row actions' confirmations in a modal dialog
// (without script the server asks on a page of its own) and closes open
// confirmations with Escape.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-copy]").forEach(function (btn) {
    var field = document.getElementById(btn.getAttribute("data-copy"));
    var status = document.getElementById(btn.getAttribute("data-status") || "");
    if (!field) {
      return;
    }
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var text = field.value !== undefined ? field.value : field.textContent;
      var done = function (ok) {
        btn.textContent = ok ? "Copied" : "Copy";
        btn.setAttribute("data-copied", ok ? "true" : "false");
        if (status) {
          status.textContent = ok ? "Copied to the clipboard." : "Select the text and press Ctrl+C (⌘C on a Mac).";
        }
        if (ok) {
          setTimeout(function () { btn.textContent = "Copy"; }, 2500);
        }
      };
      var fallback = function () {
        field.focus();
        field.select();
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
        done(ok);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
      } else {
        fallback();
      }
    });
  });

  document.querySelectorAll("input.secret[readonly]").forEach(function (el) {
    el.addEventListener("focus", function () { el.select(); });
  });

  // A row action's form names its dialog; the dialog's own form carries
  // confirm=yes. showModal draws it in the top layer, so no card or
  // table around the row can clip it.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    var dlg = document.getElementById(form.getAttribute("data-confirm"));
    if (!dlg || typeof dlg.showModal !== "function") {
      return;
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      dlg.showModal();
    });
    dlg.querySelectorAll("[data-close]").forEach(function (b) {
      b.addEventListener("click", function () { dlg.close(); });
    });
    dlg.addEventListener("click", function (ev) {
      if (ev.target === dlg) { dlg.close(); } // a click on the backdrop
    });
    dlg.addEventListener("close", function () {
      var b = form.querySelector("button");
      if (b) { b.focus(); }
    });
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "Escape") {
      return;
    }
    document.querySelectorAll("details.confirm[open]").forEach(function (d) {
      d.open = false;
      var s = d.querySelector("summary");
      if (s) { s.focus(); }
    });
  });
});
