// The web chat without this works the same (plain forms). With it: the reply field is ready to
// type into, and a form, once sent, is not sent twice by a second tap on a slow connection.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var reply = document.getElementById("reply");
  if (reply && !("ontouchstart" in window)) { reply.focus(); }
  document.querySelectorAll("main form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sent) { event.preventDefault(); return; }
      form.dataset.sent = "1";
      form.classList.add("sending");
    });
// Back to a page kept in the browser's memory: its forms may be sent again (the server says if stale).
window.addEventListener("pageshow", function () {
  document.querySelectorAll("main form").forEach(function (form) {
    delete form.dataset.sent;
    form.classList.remove("sending");
  });
});
  });
// Back to a page kept in the browser's memory: its forms may be sent again (the server says if stale).
window.addEventListener("pageshow", function () {
  document.querySelectorAll("main form").forEach(function (form) {
    delete form.dataset.sent;
    form.classList.remove("sending");
  });
});
});
// Back to a page kept in the browser's memory: its forms may be sent again (the server says if stale).
window.addEventListener("pageshow", function () {
  document.querySelectorAll("main form").forEach(function (form) {
    delete form.dataset.sent;
    form.classList.remove("sending");
  });
});
