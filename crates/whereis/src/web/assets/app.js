// whereis: suggestions under the search box (an ARIA combobox), a loading state while a lookup runs,
// and one device card at a time with previous/next. Every page works without this file.
(function () {
  'use strict';

  function setUpSearch() {
    var input = document.getElementById('q');
    var list = document.getElementById('q-suggestions');
    var status = document.getElementById('search-status');
    if (!input || !list || !input.form) { return; }
    var form = input.form;
    var people = [];
    var active = -1;
    var timer = null;
    var pending = null;

    function close() {
      list.hidden = true;
      list.replaceChildren();
      input.setAttribute('aria-expanded', 'false');
      input.removeAttribute('aria-activedescendant');
      people = [];
      active = -1;
    }

    function highlight(index) {
      var options = list.querySelectorAll('[role="option"]');
      options.forEach(function (option, i) {
        option.setAttribute('aria-selected', i === index ? 'true' : 'false');
      });
      active = index;
      if (index >= 0 && options[index]) {
        input.setAttribute('aria-activedescendant', options[index].id);
        options[index].scrollIntoView({ block: 'nearest' });
      } else {
        input.removeAttribute('aria-activedescendant');
      }
    }

    function choose(index) {
      var person = people[index];
      if (!person) { return; }
      input.value = person.username;
      close();
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
    }

    function show(found) {
      list.replaceChildren();
      people = found;
      active = -1;
      if (found.length === 0) { close(); return; }
      found.forEach(function (person, i) {
        var option = document.createElement('li');
        option.id = 'q-option-' + i;
        option.setAttribute('role', 'option');
        option.setAttribute('aria-selected', 'false');
        option.textContent = person.display_name || person.username;
        var detail = document.createElement('span');
        detail.className = 'detail';
        detail.textContent = person.username + (person.email ? ' · ' + person.email : '');
        option.appendChild(detail);
        // Keep the focus in the box: a click picks without blurring it first.
        option.addEventListener('mousedown', function (event) { event.preventDefault(); });
        option.addEventListener('click', function () { choose(i); });
        list.appendChild(option);
      });
      list.hidden = false;
      input.setAttribute('aria-expanded', 'true');
    }

    function suggest() {
      var text = input.value.trim();
      if (pending) { pending.abort(); pending = null; }
      if (text.length < 2) { close(); return; }
      var controller = new AbortController();
      pending = controller;
      fetch('/api/v1/people?q=' + encodeURIComponent(text), {
        headers: { Accept: 'application/json' },
        credentials: 'same-origin',
        signal: controller.signal
      }).then(function (response) {
        return response.ok ? response.json() : { people: [] };
      }).then(function (body) {
        if (pending === controller && document.activeElement === input) {
          show(Array.isArray(body.people) ? body.people : []);
        }
      }).catch(function () { /* aborted or offline: no suggestions, the search still works */ });
    }

    input.addEventListener('input', function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(suggest, 150);
    });
    input.addEventListener('keydown', function (event) {
      var open = !list.hidden && people.length > 0;
      if (event.key === 'ArrowDown') {
        if (!open) { suggest(); return; }
        event.preventDefault();
        highlight((active + 1) % people.length);
      } else if (event.key === 'ArrowUp') {
        if (!open) { return; }
        event.preventDefault();
        highlight(active <= 0 ? people.length - 1 : active - 1);
      } else if (event.key === 'Enter') {
        if (open && active >= 0) { event.preventDefault(); choose(active); }
      } else if (event.key === 'Escape') {
        if (open) { event.preventDefault(); close(); }
      }
    });
    input.addEventListener('blur', close);

    form.addEventListener('submit', function (event) {
      var text = input.value.trim();
      if (!text) { event.preventDefault(); input.focus(); return; }
      close();
      var button = form.querySelector('button[type="submit"]');
      if (button) { button.disabled = true; }
      if (status) {
        status.textContent = 'Looking for ' + text + '…';
        status.classList.add('busy');
      }
      var results = document.getElementById('results');
      if (results) { results.setAttribute('aria-busy', 'true'); }
    });
    // Back from the next page (kept in the back/forward cache): not busy any more.
    window.addEventListener('pageshow', function () {
      var button = form.querySelector('button[type="submit"]');
      if (button) { button.disabled = false; }
      if (status) { status.textContent = ''; status.classList.remove('busy'); }
      var results = document.getElementById('results');
      if (results) { results.removeAttribute('aria-busy'); }
    });
  }

  function setUpPager() {
    var cards = Array.prototype.slice.call(document.querySelectorAll('article[data-device-mac]'));
    var pager = document.querySelector('.pager');
    if (!pager || cards.length < 2) { return; }
    var label = pager.querySelector('[data-pager-status]');
    var previous = pager.querySelector('[data-pager="prev"]');
    var next = pager.querySelector('[data-pager="next"]');
    var current = 0;

    function showCard(index) {
      current = (index + cards.length) % cards.length;
      cards.forEach(function (card, i) { card.hidden = i !== current; });
      label.textContent = 'Device ' + (current + 1) + ' of ' + cards.length;
    }

    previous.addEventListener('click', function () { showCard(current - 1); });
    next.addEventListener('click', function () { showCard(current + 1); });
    document.addEventListener('keydown', function (event) {
      var target = event.target;
      var typing = target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA' || target.isContentEditable);
      if (typing || event.altKey || event.ctrlKey || event.metaKey) { return; }
      if (event.key === 'ArrowLeft') { showCard(current - 1); }
      if (event.key === 'ArrowRight') { showCard(current + 1); }
    });
    pager.hidden = false;
    showCard(0);
  }

  // A large floor drawn at the card's size makes the marker small: offer a view magnified around
  // it, the marker in the middle where the floor's edges allow (and start with it on a narrow
  // screen); the image is the same whole-floor PNG.
  var MAX_ZOOM = 3;
  var NARROW = 500;
  function setUpZoom() {
    document.querySelectorAll('.map-frame').forEach(function (frame) {
      var img = frame.querySelector('img');
      var button = frame.parentNode.querySelector('[data-zoom]');
      if (!img || !button) { return; }
      var markerX = parseFloat(frame.dataset.markerX) / 100;
      var markerY = parseFloat(frame.dataset.markerY) / 100;
      if (!isFinite(markerX) || !isFinite(markerY)) { return; }
      var zoomed = false;
      var factor = 2;

      function clamp(value, low, high) { return Math.min(high, Math.max(low, value)); }

      function place() {
        if (!zoomed) { img.style.transform = ''; return; }
        var width = frame.clientWidth;
        var height = frame.clientHeight;
        var x = clamp(width / 2 - factor * markerX * width, width - factor * width, 0);
        var y = clamp(height / 2 - factor * markerY * height, height - factor * height, 0);
        img.style.transform = 'translate(' + x + 'px, ' + y + 'px) scale(' + factor + ')';
      }

      function zoom(on) {
        zoomed = on;
        frame.classList.toggle('zoomed', on);
        button.setAttribute('aria-pressed', on ? 'true' : 'false');
        button.textContent = on ? 'Show the whole floor' : 'Zoom in on the marker';
        place();
      }

      function offer() {
        // A card not shown yet has no width: the page's is close enough.
        var shown = img.clientWidth || (document.getElementById('main') || document.body).clientWidth;
        if (!shown || img.naturalWidth < shown * 1.8) { return; }
        factor = clamp(img.naturalWidth / shown / 1.5, 1.5, MAX_ZOOM);
        button.hidden = false;
        zoom(shown < NARROW);
      }

      button.addEventListener('click', function () { zoom(!zoomed); });
      // A card shown by the pager, or a resized window, has new sizes to place by.
      new ResizeObserver(place).observe(frame);
      if (img.complete && img.naturalWidth) { offer(); } else { img.addEventListener('load', offer); }
    });
  }

  function start() { setUpSearch(); setUpPager(); setUpZoom(); }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
