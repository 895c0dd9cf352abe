// Live preview of a tenant's branded header, kept in step with the branding
// form (create form and branding editor). Computes the readable text colour
// and warns when it fails WCAG AA, as the server does. No build step.
(function () {
  "use strict";

  var WHITE = [255, 255, 255];
  var DARK = [17, 24, 39]; // #111827, the dark text pages use
  var LOGO_TYPES = ["image/png", "image/jpeg", "image/webp"];
  var MAX_LOGO = 512 * 1024;

  function parse(hex) {
    var m = /^#([0-9a-f]{6})$/i.exec(String(hex || "").trim());
    if (!m) return null;
    var n = parseInt(m[1], 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }

  function luminance(rgb) {
    var c = rgb.map(function (v) {
      v = v / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }

  function contrast(a, b) {
    var x = luminance(a), y = luminance(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  }

  function readable(rgb) {
    return contrast(rgb, WHITE) >= contrast(rgb, DARK) ? WHITE : DARK;
  }

  function hex(rgb) {
    return "#" + rgb.map(function (v) { return ("0" + v.toString(16)).slice(-2); }).join("");
  }

  function initials(name) {
    return name.split(/\s+/).map(function (w) {
      var m = /[\p{L}\p{N}]/u.exec(w);
      return m ? m[0] : "";
    }).filter(Boolean).slice(0, 2).join("").toUpperCase();
  }

  function setup(form) {
    var preview = document.querySelector("[data-preview]");
    if (!preview) return;
    var field = function (name) { return form.elements.namedItem(name); };
    var q = function (sel) { return document.querySelector(sel); };
    var logoImg = q("[data-preview-logo]");
    var mark = q("[data-preview-mark]");
    var originalLogo = logoImg && logoImg.getAttribute("src");
    var uploaded = null;

    function showLogo(src) {
      if (!logoImg || !mark) return;
      if (src) {
        logoImg.src = src;
        logoImg.hidden = false;
        mark.hidden = true;
      } else {
        logoImg.hidden = true;
        mark.hidden = false;
      }
    }

    function update() {
      var primary = parse(field("primary_color") && field("primary_color").value);
      var accent = parse(field("accent_color") && field("accent_color").value);
      if (primary) {
        var text = readable(primary);
        var ratio = contrast(primary, text);
        preview.style.setProperty("--primary", hex(primary));
        preview.style.setProperty("--on-primary", hex(text));
        var t = q("[data-contrast-text]"), r = q("[data-contrast-ratio]"), w = q("[data-contrast-warning]");
        if (t) t.textContent = hex(text);
        if (r) r.textContent = ratio.toFixed(1);
        if (w) w.hidden = ratio >= 4.5;
      }
      if (accent) {
        preview.style.setProperty("--accent", hex(accent));
        preview.style.setProperty("--on-accent", hex(readable(accent)));
      }
      ["primary_color", "accent_color"].forEach(function (name) {
        var out = q('[data-hex-for="' + name + '"]');
        if (out && field(name)) out.textContent = field(name).value;
      });
      var theme = field("theme");
      if (theme) preview.setAttribute("data-theme", theme.value === "dark" ? "dark" : "light");
      var nameField = field("display_name");
      if (nameField) {
        var name = nameField.value.trim() || "New tenant";
        var n = q("[data-preview-name]");
        if (n) n.textContent = name;
        if (mark) mark.textContent = initials(name);
      }
      var remove = field("remove_logo");
      if (uploaded) showLogo(uploaded);
      else if (remove && remove.checked) showLogo(null);
      else showLogo(originalLogo);
    }

    var logo = field("logo");
    if (logo) {
      logo.addEventListener("change", function () {
        var note = q("[data-logo-note]");
        var file = logo.files && logo.files[0];
        uploaded = null;
        if (note) note.hidden = true;
        if (file) {
          var problem = LOGO_TYPES.indexOf(file.type) < 0
            ? "This file is not a PNG, JPEG or WebP image; it will be refused."
            : file.size > MAX_LOGO ? "This file is larger than 512 KiB; it will be refused." : "";
          if (problem && note) {
            note.textContent = problem;
            note.hidden = false;
          } else if (!problem) {
            var reader = new FileReader();
            reader.onload = function () { uploaded = reader.result; update(); };
            reader.readAsDataURL(file);
          }
        }
        update();
      });
    }
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    update();
  }

  document.querySelectorAll("form[data-brand-form]").forEach(setup);
})();
