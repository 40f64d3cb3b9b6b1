/*! pinbridge pb.js: first-party events for pinbridge. See docs/browser.md. */
(function (w, d) {
  'use strict';
  try {
    if (w.pinbridge && w.pinbridge.track) return;
    // Replaced when served: {"m": {<name key>: <Pinterest Tag event>}, "u": <unmapped>}.
    const MAP = {/*EVENT_MAP*/};
    const Q = '_pb_q', U = '_pb_u', C = '_pb_c', MAX = 100, BATCH = 20, TRIES = 5;
    const el = d.currentScript;
    const cfg = w.pinbridgeConfig || {};
    // Each tab writes only its own queue: _pb_q.<tab id> = {t: lease time, q: events}.
    const LEASE = (+cfg.tabLeaseSeconds || 120) * 1000, QK = Q + '.' + uuid();
    const attr = (n) => (el ? el.getAttribute('data-' + n) : null);
    const key = cfg.writeKey || attr('write-key') || '';
    let url = cfg.endpoint || attr('endpoint') ||
      new URL('/v1/collect', (el && el.src) || w.location.href).href;
    url += (url.indexOf('?') < 0 ? '?' : '&') + 'writeKey=' + encodeURIComponent(key);
    const load = (k, v) => {
      try { return JSON.parse(localStorage.getItem(k)) || v; } catch (e) { return v; }
    };
    const save = (k, v) => {
      try { localStorage.setItem(k, JSON.stringify(v)); } catch (e) { /* private mode */ }
    };
    const store = (gone) => save(QK, { t: gone ? 0 : Date.now(), q: queue });
    // Every entry point and callback goes through safe(): nothing ever throws into the page.
    const safe = (f) => function () {
      try { return f.apply(null, arguments); } catch (e) { return undefined; }
    };
    let queue = [], user = load(U, {}), consent = load(C, null);
    let inflight = [], timer = 0, tries = 0;

    function uuid() {
      const c = w.crypto;
      if (c && c.randomUUID) return c.randomUUID();
      const b = new Uint8Array(16);
      if (c && c.getRandomValues) c.getRandomValues(b);
      else for (let i = 0; i < 16; i++) b[i] = Math.random() * 256;
      b[6] = (b[6] & 15) | 64;
      b[8] = (b[8] & 63) | 128;
      const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join('');
      return [0, 8, 12, 16, 20].map((i, j, a) => h.slice(i, a[j + 1])).join('-');
    }

    function schedule(ms) {
      if (!timer) timer = setTimeout(() => { timer = 0; flush(false); }, ms);
    }


    function done(batch) {
      queue = queue.filter((m) => batch.indexOf(m) < 0);
      store();
    }

    // Renews this tab's lease and takes over the queues of tabs that are gone: left (t 0),
    // silent for LEASE (crashed, frozen) or older pb.js's _pb_q. Only the live tab with the
    // smallest key adopts, so that two tabs do not both send them.
    const adopt = safe(() => {
      const now = Date.now(), ls = localStorage, dead = [], ids = queue.map((m) => m.messageId);
      let add = [];
      store();
      for (let i = 0; i < ls.length; i++) {
        const k = ls.key(i), v = !k.indexOf(Q) && k !== QK && load(k, 0);
        if (v && v.t > now - LEASE) { if (k < QK) return; } else if (v) {
          dead.push(k);
          add = add.concat(v.q || v);
        }
      }
      add = add.filter((m) => m && ids.indexOf(m.messageId) < 0 && ids.push(m.messageId));
      queue = add.concat(queue).slice(-MAX);
      store();
      dead.forEach((k) => ls.removeItem(k));
      if (add.length) schedule(0);
    });

    // Sends what is queued and not in flight; on page exit with sendBeacon, else with fetch.
    // A failure (offline, network, 429, 5xx) keeps the events queued and retries a few times
    // with growing delays; they are kept in localStorage for the next page as well.
    const flush = safe((leaving) => {
      let batch = queue.filter((m) => inflight.indexOf(m) < 0).slice(0, BATCH);
      // Offline, even a beacon would be lost: the events stay queued.
      if (!batch.length || navigator.onLine === false) return;
      let body;
      while ((body = JSON.stringify({ batch: batch, sentAt: new Date().toISOString() })).length >
        20000 && batch.length > 1) batch = batch.slice(0, batch.length >> 1);
      if (leaving || !w.fetch) {
        if (navigator.sendBeacon && navigator.sendBeacon(url, body)) done(batch);
        return;
      }
      inflight = inflight.concat(batch);
      const settle = safe((ok) => {
        inflight = inflight.filter((m) => batch.indexOf(m) < 0);
        if (ok) {
          tries = 0;
          done(batch);
          schedule(0);
        } else if (++tries < TRIES) schedule(1000 << tries);
      });
      // text/plain keeps it a simple request: no CORS preflight.
      fetch(url, {
        method: 'POST', body: body, credentials: 'include', keepalive: body.length < 20000,
        headers: { 'Content-Type': 'text/plain' },
      }).then((r) => settle(r.status < 500 && r.status !== 429), () => settle(false));
    });

    // The Pinterest Tag, when on the page, gets the same event under the same event_id.
    function tag(m) {
      const p = m.properties;
      // The event name as the server maps it (mapping.name_key: no case, spaces, _ or -).
      const key = String(m.event).replace(/[ _\t-]/g, '').toLowerCase();
      const name = m.type === 'page' ? (p.category ? 'viewcategory' : 'pagevisit')
        : m.type === 'track' ? (MAP.m || {})[key] || MAP.u : '';
      if (!name || typeof w.pintrk !== 'function' || (consent && consent.ads === false)) return;
      const data = { event_id: m.messageId };
      const value = p.revenue != null ? p.revenue : p.total != null ? p.total : p.value;
      if (value != null) data.value = value;
      if (p.currency) data.currency = p.currency;
      if (p.order_id) data.order_id = p.order_id;
      if (p.query) data.search_query = p.query;
      if (p.category) data.product_category = p.category;
      if (Array.isArray(p.products)) {
        data.line_items = p.products.map((x) => ({
          product_id: x.product_id || x.sku, product_name: x.name, product_price: x.price,
          product_quantity: x.quantity, product_category: x.category, product_brand: x.brand,
        }));
        data.order_quantity = p.products.reduce((n, x) => n + (+x.quantity || 1), 0);
      }
      w.pintrk('track', name, data);
    }

    function send(type, fields) {
      const l = w.location;
      const m = Object.assign({
        type: type, messageId: uuid(), timestamp: new Date().toISOString(), properties: {},
        context: {
          page: {
            url: l.href, path: l.pathname, search: l.search, referrer: d.referrer, title: d.title,
          },
          locale: navigator.language,
          library: { name: 'pb.js', version: '1' },
          traits: user.traits || {},
        },
      }, fields);
      if (user.id) m.userId = user.id;
      if (consent) m.context.consent = consent;
      queue.push(m);
      if (queue.length > MAX) queue = queue.slice(-MAX);
      store();
      schedule(0);
      tag(m);
      return m.messageId;
    }

    const api = {
      page: safe((properties) => send('page', { properties: Object.assign({}, properties) })),
      track: safe((name, properties) => name &&
        send('track', { event: String(name), properties: Object.assign({}, properties) })),
      identify: safe((id, traits) => {
        if (id && typeof id === 'object') { traits = id; id = null; }
        if (id != null) user.id = String(id);
        user.traits = Object.assign({}, user.traits, traits);
        save(U, user);
        return send('identify', { traits: user.traits });
      }),
      consent: safe((choice) => {
        consent = { ads: !!(choice && choice.ads) };
        save(C, consent);
        if (typeof w.pintrk === 'function') w.pintrk('setconsent', consent.ads);
      }),
      reset: safe(() => { user = {}; save(U, user); }),
    };
    adopt();
    const early = Array.isArray(w.pinbridge) ? w.pinbridge : [];
    w.pinbridge = api;
    try {
      w.addEventListener('online', () => { adopt(); flush(false); });
      // Leaving: what no beacon took is left to another tab or the next page.
      w.addEventListener('pagehide', () => { flush(true); store(1); });
      setInterval(adopt, LEASE / 6);
      d.addEventListener('visibilitychange', () => d.visibilityState === 'hidden' && flush(true));
    } catch (e) { /* no events: sends still happen on calls */ }
    // Calls queued before the script loaded (window.pinbridge = [['consent', {...}], ...]) run
    // first, so that a consent choice or an identify applies to the automatic page view.
    early.forEach(safe((call) => api[call[0]] && api[call[0]].apply(null, call.slice(1))));
    if (String(cfg.autoPage != null ? cfg.autoPage : attr('auto-page')) !== 'false') api.page();
    if (queue.length) schedule(0);
  } catch (e) { /* pb.js never breaks the page */ }
})(window, document);
