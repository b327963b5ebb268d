// Draws the interactive figures of one page of the book (attnbook.interactive).
// Each figure is a <div class="attnbook-vega" data-spec="ID"> holding its static PNG,
// and a <script type="application/json" id="ID"> with its Vega-Lite spec. vega-embed,
// loaded before this file from _static/vega/, replaces the PNG by the live figure; with
// JavaScript off, or if drawing fails, the PNG stays. Tests read each figure's Vega view
// from the div (div.vegaView) once window.attnbookFigures has resolved.
(function () {
  "use strict";
  function draw(div) {
    var spec = JSON.parse(document.getElementById(div.dataset.spec).textContent);
    var target = document.createElement("div");
    div.appendChild(target);
    return vegaEmbed(target, spec, {actions: false, renderer: "svg"}).then(function (result) {
      div.querySelectorAll(":scope > img").forEach(function (img) { img.remove(); });
      div.vegaView = result.view;
      div.dataset.rendered = "true";
    }).catch(function (error) {
      target.remove();
      console.error("attnbook: an interactive figure could not be drawn:", error);
    });
  }
  function drawAll() {
    var divs = Array.prototype.slice.call(document.querySelectorAll("div.attnbook-vega"));
    window.attnbookFigures = Promise.all(divs.map(draw));
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
