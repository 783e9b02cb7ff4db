// The demo chat page: sends the message as JSON and shows the bot's replies as bubbles, in order.
// Without this script the form still posts and the page comes back with the exchange.
(function () {
  'use strict';
  var form = document.getElementById('chat-form');
  var list = document.getElementById('messages');
  if (!form || !list || !window.fetch) { return; }
  var text = form.elements.namedItem('text');
  var from = document.getElementById('from');
  var space = document.getElementById('space');
  var status = document.getElementById('chat-status');
  var button = form.querySelector('button[type="submit"]');
  var busy = false;

  function senderName() {
    var option = from && from.options[from.selectedIndex];
    return option ? (option.getAttribute('data-name') || option.value) : 'You';
  }

  // One message in the list; `fill` puts its content into the bubble.
  function bubble(kind, sender, fill) {
    var empty = list.querySelector('[data-empty]');
    if (empty) { empty.remove(); }
    var item = document.createElement('li');
    item.className = 'msg ' + kind;
    var who = document.createElement('span');
    who.className = 'sender';
    who.textContent = sender;
    var body = document.createElement('div');
    body.className = 'bubble';
    fill(body);
    item.appendChild(who);
    item.appendChild(body);
    list.appendChild(item);
    item.scrollIntoView({ block: 'end' });
    return item;
  }

  function plainText(body, value) {
    var paragraph = document.createElement('p');
    paragraph.textContent = value;
    body.appendChild(paragraph);
  }

  function reply(doc) {
    return function (body) {
      // `html` is escaped on the server: the message with its markdown rendered.
      body.innerHTML = doc.html || '';
      if (doc.image_url) {
        var link = document.createElement('a');
        link.className = 'shot';
        link.href = doc.image_url;
        var image = document.createElement('img');
        image.src = doc.image_url;
        image.alt = 'Floor map with the device marked';
        if (doc.image_width && doc.image_height) {
          image.width = doc.image_width;
          image.height = doc.image_height;
        }
        link.appendChild(image);
        body.appendChild(link);
      }
    };
  }

  function failure(message) {
    bubble('error', 'demo', function (body) { plainText(body, message); })
      .setAttribute('role', 'alert');
  }

  function send() {
    var said = text.value.trim();
    if (!said || busy) { return; }
    busy = true;
    button.disabled = true;
    status.textContent = 'The bot is answering…';
    status.classList.add('busy');
    bubble('mine', senderName(), function (body) { plainText(body, said); })
      .setAttribute('data-said', '');
    text.value = '';
    var request = {
      text: said,
      from: from ? from.value : null,
      space: space && space.value.trim() ? space.value.trim() : null
    };
    fetch('/demo/chat', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
      body: JSON.stringify(request)
    }).then(function (response) {
      return response.json().catch(function () {
        return { error: 'The demo answered ' + response.status + ' without a readable body.' };
      });
    }).then(function (doc) {
      (doc.replies || []).forEach(function (item) {
        bubble('bot', 'whereis', reply(item)).setAttribute('data-reply', '');
      });
      if (doc.error) { failure(doc.error); }
      status.textContent = '';
    }).catch(function (err) {
      failure('The demo could not be reached: ' + err.message);
      status.textContent = '';
    }).then(function () {
      busy = false;
      button.disabled = false;
      status.classList.remove('busy');
      text.focus();
    });
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    send();
  });
  text.addEventListener('keydown', function (event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
})();
