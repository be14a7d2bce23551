// push-client.js: the browser client of the marketplace push server. One dependency-free ES module.
//
//   import { PushClient } from "/static/push-client.js";
//   const client = new PushClient({ getToken: async ({ refresh }) => token });
//   client.on("order:ord_1", (event) => map.move(event.data));
//   client.start();
//
// It connects with a single-use ticket, joins the user's channel and every channel with a listener,
// reconnects with full-jitter backoff and resumes each channel from its last offset (the user channel
// by `since` on the /ws URL), hands the page each channel's events once and in offset order
// (push-order.js; notifications also once by id), reacts to close codes, splits batched frames, asks
// the page to refetch over REST when history did not reach back far enough, and falls back to
// Server-Sent Events, then to REST polling with If-None-Match. With `onCounts` it keeps the inbox's
// counts ({unseen, unread, total}) current: fetched over REST at start and after every (re)connect
// or resync, then moved by `notification.counts` events. See docs/client.md.

import { ChannelOrder } from "./push-order.js";

const CLOSE_BAD_CREDENTIALS = 4001;
const CLOSE_DISCONNECTED = 4003; // the server cut this user off (credentials revoked): no reconnect
const CLOSE_TOO_SLOW = 4008;
const CLOSE_RATE_LIMITED = 4029;
const FAILURES_BEFORE_FALLBACK = 3;

/** Full jitter: a random delay in [0, min(cap, base * 2^attempt)) milliseconds. */
export function backoffDelay(attempt, base = 500, cap = 30000) {
  return Math.random() * Math.min(cap, base * 2 ** attempt);
}

function sameCounts(a, b) {
  return Boolean(a && b) && a.unseen === b.unseen && a.unread === b.unread && a.total === b.total;
}

export class PushClient {
  /**
   * @param {object} options
   * @param {(o: {refresh: boolean}) => Promise<string>} options.getToken  the page's bearer token (refresh: after 4001)
   * @param {string} [options.baseUrl]  the server ("" = this origin)
   * @param {(status: string) => void} [options.onStatus]  "connecting" | "websocket" | "sse" | "polling" | "stopped"
   *   | "signed-out" (the server disconnected this user, 4003: the client stops; sign in again, then start())
   * @param {(channel: string) => void} [options.onResync]  history did not reach back: refetch this channel over REST
   * @param {(counts: {unseen: number, unread: number, total: number}) => void} [options.onCounts]  the inbox's
   *   counts (the badge shows `unseen`): from `GET /notifications/counts` at start and after each (re)connect or
   *   resync, and from every `notification.counts` event; called only when they change
   * @param {number} [options.pollInterval]  milliseconds between REST polls in the last fallback
   * @param {string[]} [options.transports]  which to try, in order (tests narrow it)
   */
  constructor(options) {
    this.options = { baseUrl: "", pollInterval: 5000, transports: ["websocket", "sse", "polling"], ...options };
    this.listeners = new Map(); // channel -> Set(callback)
    this.order = new ChannelOrder(); // per channel: its offset, what was delivered, what waits for a replay
    this.seenNotifications = new Set();
    this.userChannel = null;
    this.transport = null;
    this.failures = 0;
    this.stopped = true;
    this.timer = null;
    this.counts = null; // the latest inbox counts {unseen, unread, total}, once known
    this.countsEtag = null; // of the last GET /notifications/counts, while no event has moved the counts since
    this.countsVersion = 0; // bumped by each counts event: a REST answer that started before one is stale
  }

  /** Listen to a channel's events; joins it if connected. Answers a function that removes the listener. */
  on(channel, callback) {
    if (!this.listeners.has(channel)) {
      this.listeners.set(channel, new Set());
      this._join(channel);
    }
    this.listeners.get(channel).add(callback);
    return () => this.off(channel, callback);
  }

  /** Stop listening; the channel is left when its last listener goes. */
  off(channel, callback) {
    const callbacks = this.listeners.get(channel);
    if (!callbacks) return;
    callbacks.delete(callback);
    if (callbacks.size === 0 && channel !== this.userChannel) {
      this.listeners.delete(channel);
      if (this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify({ op: "unsubscribe", channel }));
      } else if (this.transport === "sse") {
        this._restart();
      }
    }
  }

  start() {
    this.stopped = false;
    this._connect(false);
    if (this.options.onCounts) this.refreshCounts(); // the badge is right before any event arrives
  }

  /**
   * Fetch `GET /notifications/counts` (with If-None-Match once it has an ETag) and report them if they changed.
   * Answers the counts known afterwards (null while none are). Called by the client itself when `onCounts` is set.
   */
  async refreshCounts() {
    const version = this.countsVersion;
    const etag = this.countsEtag;
    try {
      const response = await this._fetch("/notifications/counts", { headers: etag ? { "If-None-Match": etag } : {} });
      if (response.status === 200) {
        const counts = await response.json();
        // An event that arrived meanwhile is at least as new as this answer (the server computes it at publish).
        if (version === this.countsVersion && !this.stopped) {
          this.countsEtag = response.headers.get("ETag");
          this._setCounts(counts);
        }
      }
    } catch (error) {
      // network trouble: the next (re)connect or event brings them
    }
    return this.counts;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this._teardown();
    this._status("stopped");
  }

  /** Disconnected by the server (4003): stop for good, without a reconnect loop, and say so. */
  _signedOut() {
    this.stopped = true;
    clearTimeout(this.timer);
    this._teardown();
    this._status("signed-out");
  }

  // ---- helpers ----

  _status(status) {
    this.status = status;
    if (this.options.onStatus) this.options.onStatus(status);
  }

  _setCounts(data) {
    const counts = { unseen: data.unseen, unread: data.unread, total: data.total };
    const known = this.counts;
    this.counts = counts;
    if (!sameCounts(known, counts) && this.options.onCounts) this.options.onCounts({ ...counts });
  }

  _refreshCountsIfWanted() {
    if (this.options.onCounts && !this.stopped) this.refreshCounts();
  }

  _url(path) {
    return this.options.baseUrl + path;
  }

  async _fetch(path, init = {}, refresh = false) {
    const token = await this.options.getToken({ refresh });
    const headers = { ...(init.headers || {}), Authorization: `Bearer ${token}` };
    return fetch(this._url(path), { ...init, headers });
  }

  async _ticket(refresh) {
    const response = await this._fetch("/realtime/ticket", { method: "POST" }, refresh);
    if (!response.ok) throw new Error(`ticket: HTTP ${response.status}`);
    return (await response.json()).ticket;
  }

  _teardown() {
    this.order.interrupt();
    if (this.socket) {
      this.socket.onclose = this.socket.onmessage = this.socket.onerror = null;
      this.socket.close(1000);
      this.socket = null;
    }
    if (this.source) {
      this.source.close();
      this.source = null;
    }
    this.transport = null;
  }

  _restart() {
    this._teardown();
    this._connect(false);
  }

  _retry(delay, refresh = false) {
    this._teardown();
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._connect(refresh), delay);
  }

  _nextTransport() {
    const order = this.options.transports;
    const index = Math.min(Math.floor(this.failures / FAILURES_BEFORE_FALLBACK), order.length - 1);
    return order[index];
  }

  async _connect(refresh) {
    if (this.stopped) return;
    const transport = this._nextTransport();
    this._status("connecting");
    try {
      if (transport === "websocket") await this._openWebSocket(refresh);
      else if (transport === "sse") await this._openEventSource(refresh);
      else this._startPolling();
    } catch (error) {
      this.failures += 1;
      this._retry(backoffDelay(this.failures));
    }
  }

  // ---- WebSocket ----

  async _openWebSocket(refresh) {
    const ticket = await this._ticket(refresh);
    const base = this.options.baseUrl || window.location.origin;
    let url = base.replace(/^http/, "ws") + `/ws?ticket=${encodeURIComponent(ticket)}`;
    // The server joins the user channel as the socket opens: from `since`, its replay comes before any live event.
    const since = this.userChannel ? this.order.resume(this.userChannel, true) : null;
    if (since) url += `&since=${encodeURIComponent(since)}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    let welcomed = false;
    socket.onmessage = (message) => {
      for (const line of String(message.data).split("\n")) {
        if (!line) continue;
        const parsed = JSON.parse(line);
        if (parsed.op === "welcome") {
          welcomed = true;
          this.failures = 0;
          this.transport = "websocket";
          this._status("websocket");
          this._welcome(parsed);
        } else {
          this._dispatch(parsed);
        }
      }
    };
    socket.onclose = (event) => {
      this.socket = null;
      this.order.interrupt();
      if (this.stopped) return;
      if (!welcomed) this.failures += 1;
      if (event.code === CLOSE_DISCONNECTED) this._signedOut();
      else if (event.code === CLOSE_BAD_CREDENTIALS) this._retry(0, true);
      else if (event.code === CLOSE_TOO_SLOW) this._retry(0);
      else if (event.code === CLOSE_RATE_LIMITED) this._retry(5000 + backoffDelay(4));
      else this._retry(backoffDelay(this.failures));
    };
  }

  _welcome(welcome) {
    this.userChannel = `user:${welcome.userId}`;
    if (!this.listeners.has(this.userChannel)) this.listeners.set(this.userChannel, new Set());
    for (const channel of this.listeners.keys()) {
      // The server joined the user channel itself (resuming it from the URL's `since`).
      if (channel !== this.userChannel) this._subscribe(channel);
    }
    this._refreshCountsIfWanted(); // events may have been missed while disconnected (304 when none were)
  }

  _subscribe(channel) {
    const since = this.order.resume(channel);
    const message = { op: "subscribe", channel };
    if (since) message.since = since;
    this.socket.send(JSON.stringify(message));
  }

  _join(channel) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN && this.transport === "websocket") {
      this._subscribe(channel);
    } else if (this.transport === "sse") {
      this._restart(); // an EventSource's channels are fixed: reopen with the new set, resuming the old ones
    }
  }

  // ---- messages, shared by WebSocket and SSE ----

  _dispatch(message) {
    if (message.op === "subscribed") {
      const { deliver, resync, resubscribe } = this.order.acknowledge(message);
      // An older server ignores `since` on the URL: resume the user channel the old way; live events are held.
      if (resubscribe && this.socket && this.socket.readyState === WebSocket.OPEN) this._subscribe(message.channel);
      for (const event of deliver) this._deliver(event);
      if (resync && message.channel === this.userChannel) this._refreshCountsIfWanted();
      if (resync && this.options.onResync) this.options.onResync(message.channel);
      return;
    }
    if (message.op !== "event") return;
    for (const event of this.order.accept(message)) this._deliver(event);
  }

  _deliver(message) {
    if (message.type === "notification.created" && message.data && message.data.id) {
      if (this.seenNotifications.has(message.data.id)) return;
      this.seenNotifications.add(message.data.id);
      if (this.seenNotifications.size > 1000) {
        this.seenNotifications.delete(this.seenNotifications.values().next().value);
      }
    }
    if (message.type === "notification.counts" && message.data && message.channel === this.userChannel) {
      this.countsVersion += 1;
      this.countsEtag = null; // the counts moved since the last GET: its ETag no longer says "unchanged"
      this._setCounts(message.data);
    }
    const callbacks = this.listeners.get(message.channel);
    if (callbacks) for (const callback of [...callbacks]) callback(message);
  }

  // ---- Server-Sent Events ----

  _lastEventId() {
    // The server's SSE cursor is base64url JSON of {channel: offset}; rebuilt from what was delivered.
    const offsets = this.order.positions();
    if (Object.keys(offsets).length === 0) return null;
    return btoa(JSON.stringify(offsets)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async _openEventSource(refresh) {
    const ticket = await this._ticket(refresh);
    const channels = [...this.listeners.keys()].filter((c) => c !== this.userChannel);
    const params = new URLSearchParams({ ticket });
    if (channels.length) params.set("channels", channels.join(","));
    const lastEventId = this._lastEventId();
    if (lastEventId) params.set("lastEventId", lastEventId);
    const source = new EventSource(this._url(`/sse?${params}`));
    this.source = source;
    let opened = false;
    const handle = (event) => {
      const message = JSON.parse(event.data);
      if (!this.userChannel && message.channel && message.channel.startsWith("user:")) {
        this.userChannel = message.channel;
      }
      this._dispatch(message);
    };
    source.onopen = () => {
      opened = true;
      this.failures = FAILURES_BEFORE_FALLBACK; // stay on SSE while it works
      this.transport = "sse";
      this._status("sse");
      this._refreshCountsIfWanted();
    };
    for (const type of [
      "subscribed", "notification.created", "notification.read", "notification.unread_count", "notification.updated",
      "notification.counts", "order.created", "order.status_changed", "tracking.location", "tracking.eta",
      "payment.status_changed",
    ]) {
      source.addEventListener(type, handle);
    }
    source.onmessage = handle;
    // SSE has no close codes: the server's last event says why a stream ends.
    source.addEventListener("close", (event) => {
      if (JSON.parse(event.data).code === CLOSE_DISCONNECTED) this._signedOut();
    });
    source.onerror = () => {
      // A ticket works once, so the browser's own reconnect would fail: reconnect by hand.
      if (!opened) this.failures += 1;
      this._retry(backoffDelay(this.failures % FAILURES_BEFORE_FALLBACK));
    };
  }

  // ---- REST polling, the last resort ----

  _startPolling() {
    this.transport = "polling";
    this._status("polling");
    let etag = null;
    const poll = async () => {
      if (!this.userChannel) {
        const me = await this._fetch("/me").then((r) => (r.ok ? r.json() : null)).catch(() => null);
        if (me) this.userChannel = `user:${me.userId}`;
      }
      if (this.stopped || this.transport !== "polling") return;
      try {
        const headers = etag ? { "If-None-Match": etag } : {};
        const response = await this._fetch("/notifications/unread-count", { headers });
        if (response.status === 200) {
          etag = response.headers.get("ETag");
          const data = await response.json();
          const channel = this.userChannel || "user:";
          const callbacks = this.listeners.get(this.userChannel) || new Set();
          for (const callback of [...callbacks]) {
            callback({ op: "event", channel, offset: null, type: "notification.unread_count", data, ts: null });
          }
          for (const other of this.listeners.keys()) {
            if (other !== this.userChannel && this.options.onResync) this.options.onResync(other);
          }
        }
        if (this.options.onCounts) {
          const before = this.counts;
          const counts = await this.refreshCounts(); // If-None-Match: a 304 while nothing changed
          if (counts && !sameCounts(before, counts) && this.transport === "polling") {
            const channel = this.userChannel || "user:";
            const callbacks = this.listeners.get(this.userChannel) || new Set();
            for (const callback of [...callbacks]) {
              callback({ op: "event", channel, offset: null, type: "notification.counts", data: { ...counts }, ts: null });
            }
          }
        }
      } catch (error) {
        // network trouble: keep polling
      }
      this.timer = setTimeout(poll, this.options.pollInterval);
    };
    poll();
    // Sockets may work again later: try them once a minute.
    setTimeout(() => {
      if (this.transport === "polling" && !this.stopped) {
        this.failures = 0;
        this._restart();
      }
    }, 60000);
  }
}
