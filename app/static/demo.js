// The /demo page: a notification bell (an inbox: unseen badge, seen when opened, read on click, archive,
// preferences) and a live order-tracking map, wired with push-client.js.
import { PushClient } from "/static/push-client.js";

const $ = (id) => document.getElementById(id);
const NORMAL_PATH = ["PENDING", "CONFIRMED", "PROCESSING", "SHIPPED", "OUT_FOR_DELIVERY", "DELIVERED"];
const CHANNELS = ["IN_APP", "EMAIL", "SMS", "PUSH"];
const state = { token: null, userId: null, client: null, order: null, unsubscribeOrder: null, route: [], counts: null };

/** The raw response, with the page's token (callers that must tell a 404 apart). */
function request(path, init = {}) {
  const headers = { ...(init.headers || {}), Authorization: `Bearer ${state.token}` };
  if (init.body) headers["Content-Type"] = "application/json";
  return fetch(path, { ...init, headers });
}

/** Work the page does not wait for (a refetch, a mark-seen, a click's PATCH) may fail while the server is away:
 *  say so in the console, not as an uncaught rejection; the next event, reconnect or resync brings the page back. */
function quietly(promise) {
  promise.catch((error) => console.warn(`demo: ${error.message}`));
}

async function api(path, init = {}) {
  const response = await request(path, init);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.status === 204 ? null : response.json();
}

// ---- sign-in (dev-only demo login) ----

async function signIn(userId) {
  if (state.client) state.client.stop();
  if (!userId) return;
  const login = await fetch("/demo/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ userId }),
  }).then((r) => r.json());
  state.token = login.token;
  state.userId = userId;
  const params = new URLSearchParams(window.location.search);
  const transports = params.get("transports") ? params.get("transports").split(",") : undefined;
  state.client = new PushClient({
    getToken: async () => state.token,
    onStatus: (status) => {
      $("connection").textContent = status;
      $("connection").className = `pill ${status}`;
      document.body.dataset.transport = status;
    },
    onResync: (channel) => quietly(channel.startsWith("order:") ? loadTracking(state.order) : loadNotifications()),
    // The badge: fetched at start and after every reconnect, then live from notification.counts.
    onCounts: (counts) => {
      showCounts(counts);
      // Polling sees the counts move but no events: refetch the list then.
      if (state.client && state.client.transport === "polling") quietly(loadNotifications());
    },
    ...(transports ? { transports } : {}),
  });
  state.client.on(`user:${userId}`, onUserEvent);
  state.client.start();
  await Promise.all([loadNotifications(), loadOrders(), loadPreferences()]);
}

// ---- the bell ----

/** The badge counts the unseen (SPEC "The inbox"); the list's head says how many are unread. */
function showCounts(counts) {
  state.counts = counts;
  const unseen = counts.unseen;
  $("badge").textContent = unseen > 99 ? "99+" : String(unseen);
  $("badge").hidden = unseen === 0;
  $("bell").setAttribute("aria-label", unseen ? `Notifications, ${unseen} new` : "Notifications");
  $("bell-status").textContent = unseen ? `${unseen} new notification${unseen === 1 ? "" : "s"}` : "";
  $("unread-summary").textContent = counts.unread ? `${counts.unread} unread` : "";
  document.body.dataset.unseen = String(unseen);
}

/** `GET /notifications/unread-count` and `notification.unread_count` (archived ones included), as before the inbox. */
function setUnread(count) {
  document.body.dataset.unread = String(count);
}

function isOpen() {
  return !$("dropdown").hidden;
}

function applyState(li, { isRead, isSeen }) {
  if (isRead !== undefined) {
    li.classList.toggle("unread", !isRead);
    li.querySelector(".state").textContent = isRead ? "" : "Unread: "; // for screen readers; the dot says it on screen
  }
  if (isSeen !== undefined) li.dataset.seen = String(isSeen);
}

function renderNotification(n) {
  const li = document.createElement("li");
  li.dataset.id = n.id;
  li.innerHTML = `<button type="button" class="open"><span class="state sr-only"></span><strong></strong><span class="message"></span><small></small></button>
    <button type="button" class="archive">Archive</button>`;
  li.querySelector("strong").textContent = n.title;
  li.querySelector(".message").textContent = n.message;
  li.querySelector("small").textContent = new Date(n.createdAt).toLocaleString();
  li.querySelector(".archive").setAttribute("aria-label", `Archive: ${n.title}`);
  applyState(li, { isRead: n.isRead, isSeen: n.isSeen });
  // Opening one reads it (and so sees it); the answer is the notification after the change.
  li.querySelector(".open").onclick = () =>
    quietly(api(`/notifications/${n.id}/read`, { method: "PATCH" }).then((after) => applyState(li, after)));
  li.querySelector(".archive").onclick = () =>
    quietly(api(`/notifications/${n.id}/archive`, { method: "PATCH" }).then(() => removeItem(li)));
  return li;
}

function removeItem(li) {
  if (li.contains(document.activeElement)) $("bell").focus(); // keep the keyboard somewhere sensible
  li.remove();
  showEmpty();
}

function showEmpty() {
  $("notifications-empty").hidden = $("notifications").children.length > 0;
}

function item(id) {
  return [...$("notifications").children].find((li) => li.dataset.id === id);
}

async function loadNotifications() {
  const [page, count] = await Promise.all([api("/notifications?limit=20"), api("/notifications/unread-count")]);
  $("notifications").replaceChildren(...page.items.map(renderNotification));
  showEmpty();
  setUnread(count.count);
  if (isOpen()) markSeen(page.items.filter((n) => !n.isSeen).map((n) => n.id));
}

/** What the open list shows is seen: all of it when the bell opens, then each one that arrives while it is open. */
function markSeen(ids) {
  if (ids.length) quietly(api("/notifications/bulk", { method: "PATCH", body: JSON.stringify({ ids, action: "seen" }) }));
}

function onUserEvent(event) {
  const data = event.data || {};
  if (event.type === "notification.created") {
    if (item(data.id)) return; // already listed by a refetch that raced the event
    $("notifications").prepend(renderNotification(data));
    showEmpty();
    if (isOpen()) markSeen([data.id]);
  } else if (event.type === "notification.updated") {
    const targets = [...$("notifications").children].filter((li) => data.all || (data.ids || []).includes(li.dataset.id));
    if (data.isArchived === true) targets.forEach(removeItem);
    else if (data.isArchived === false) quietly(loadNotifications()); // back from the archive: the event does not carry it
    for (const li of targets) applyState(li, { isRead: data.isRead, isSeen: data.isSeen });
  } else if (event.type === "notification.unread_count") {
    setUnread(data.count);
  } else if (event.type === "notification.read") {
    // Servers before the inbox send only this one; with it, notification.updated says the same.
    for (const li of $("notifications").children) {
      if (data.all || (data.ids || []).includes(li.dataset.id)) applyState(li, { isRead: true, isSeen: true });
    }
  } else if (event.type === "order.created" || event.type === "order.status_changed") {
    const moving = ["SHIPPED", "OUT_FOR_DELIVERY"].includes(data.toStatus);
    quietly(
      loadOrders().then(() => {
        if (moving && data.orderId !== state.order) return selectOrder(data.orderId);
      }),
    );
  }
}

function setOpen(open) {
  $("dropdown").hidden = !open;
  $("bell").setAttribute("aria-expanded", String(open));
  // Opening the bell shows the list: everything in it is seen, and the badge goes to 0.
  if (open && state.token) quietly(api("/notifications/seen-all", { method: "PATCH" }));
}

$("bell").onclick = () => setOpen(!isOpen());
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && isOpen()) {
    setOpen(false);
    $("bell").focus();
  }
});
$("read-all").onclick = () => quietly(api("/notifications/read-all", { method: "PATCH" }));
$("archive-read").onclick = () => quietly(api("/notifications/archive-all?read=true", { method: "PATCH" }));

// ---- preferences (SPEC "Preferences, per user"): one switch per channel, PATCH on change ----

function preferencesState(name, note) {
  document.body.dataset.preferences = name;
  $("prefs-form").hidden = name !== "ready";
  $("prefs-note").textContent = note;
}

function showPreferences(preferences) {
  for (const input of $("prefs-form").querySelectorAll("input")) {
    input.checked = preferences.channels[input.name] !== false; // everything is on until changed
  }
}

async function loadPreferences() {
  let response;
  try {
    response = await request("/notifications/preferences");
  } catch {
    preferencesState("error", "Preferences could not be loaded.");
    return;
  }
  if (response.status === 404 || response.status === 405) {
    preferencesState("unavailable", "Preferences are not available on this server.");
  } else if (!response.ok) {
    preferencesState("error", `Preferences could not be loaded (HTTP ${response.status}).`);
  } else {
    showPreferences(await response.json());
    preferencesState("ready", "");
  }
}

for (const input of $("prefs-form").querySelectorAll("input")) {
  input.onchange = async () => {
    const wanted = input.checked;
    input.disabled = true;
    try {
      const body = JSON.stringify({ channels: { [input.name]: wanted } });
      const response = await request("/notifications/preferences", { method: "PATCH", body });
      if (response.status === 404 || response.status === 405) {
        preferencesState("unavailable", "Preferences are not available on this server.");
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const answer = response.status === 204 ? null : await response.json().catch(() => null);
      if (answer && answer.channels) showPreferences(answer);
      $("prefs-note").textContent = `Saved: ${input.parentElement.textContent.trim()} ${wanted ? "on" : "off"}.`;
    } catch (error) {
      input.checked = !wanted;
      $("prefs-note").textContent = `Not saved (${error.message}).`;
    } finally {
      input.disabled = false;
    }
  };
}

$("prefs-toggle").onclick = () => {
  const open = $("preferences").hidden;
  $("preferences").hidden = !open;
  $("prefs-toggle").setAttribute("aria-expanded", String(open));
};

// ---- orders and the tracking map ----

async function loadOrders() {
  const page = await api("/orders?limit=30");
  const items = page.items.map((order) => {
    const li = document.createElement("li");
    li.dataset.id = order.id;
    li.className = order.id === state.order ? "selected" : "";
    li.innerHTML = `<span></span><span class="status"></span>`;
    li.children[0].textContent = order.id.slice(-10);
    li.children[1].textContent = order.status;
    li.onclick = () => quietly(selectOrder(order.id));
    return li;
  });
  $("orders").replaceChildren(...items);
  if (!state.order && page.items.length) {
    const moving = page.items.find((o) => ["SHIPPED", "OUT_FOR_DELIVERY"].includes(o.status)) || page.items[0];
    quietly(selectOrder(moving.id));
  }
}

async function selectOrder(orderId) {
  if (state.unsubscribeOrder) state.unsubscribeOrder();
  state.order = orderId;
  for (const li of $("orders").children) li.className = li.dataset.id === orderId ? "selected" : "";
  state.unsubscribeOrder = state.client.on(`order:${orderId}`, onOrderEvent);
  await loadTracking(orderId);
}

async function loadTracking(orderId) {
  if (!orderId) return;
  let tracking;
  try {
    tracking = await api(`/customer/orders/${orderId}/tracking`);
  } catch {
    // Vendors and admins are not the order's customer: show what GET /orders/{id} says.
    const order = await api(`/orders/${orderId}`);
    tracking = { orderId, status: order.status, paymentStatus: order.paymentStatus, currentLocation: order.currentLocation,
      estimatedDeliveryAt: order.estimatedDeliveryAt, events: [], timeline: NORMAL_PATH.map((s) => ({ status: s, at: null })) };
  }
  $("tracking-title").textContent = `Tracking ${orderId.slice(-10)}`;
  $("status").textContent = tracking.status;
  $("payment").textContent = tracking.paymentStatus;
  setEta(tracking.estimatedDeliveryAt);
  state.route = tracking.events.filter((e) => e.lat != null).map((e) => ({ lat: e.lat, lng: e.lng }));
  if (tracking.currentLocation) state.route.push(tracking.currentLocation);
  renderTimeline(tracking.timeline);
  drawMap();
}

function setEta(at) {
  $("eta").textContent = at ? new Date(at).toLocaleTimeString() : "–";
}

function renderTimeline(timeline) {
  $("timeline").replaceChildren(
    ...timeline.map((step) => {
      const li = document.createElement("li");
      li.className = step.at ? "reached" : "";
      li.dataset.status = step.status;
      li.textContent = step.status.replaceAll("_", " ").toLowerCase();
      return li;
    }),
  );
}

function onOrderEvent(event) {
  if (event.type === "tracking.location") {
    state.route.push({ lat: event.data.lat, lng: event.data.lng });
    drawMap();
  } else if (event.type === "tracking.eta") {
    setEta(event.data.estimatedDeliveryAt);
  } else if (event.type === "order.status_changed") {
    $("status").textContent = event.data.toStatus;
    const index = NORMAL_PATH.indexOf(event.data.toStatus);
    [...$("timeline").children].forEach((li, i) => {
      if (i <= index) li.className = "reached";
    });
  } else if (event.type === "payment.status_changed") {
    $("payment").textContent = event.data.paymentStatus;
  }
}

// The map needs no tiles: points are projected into the SVG's box around the route.
function drawMap() {
  const points = state.route;
  const streets = [];
  for (let x = 60; x < 600; x += 90) streets.push(`<line x1="${x}" y1="0" x2="${x}" y2="360"/>`);
  for (let y = 45; y < 360; y += 70) streets.push(`<line x1="0" y1="${y}" x2="600" y2="${y}"/>`);
  $("streets").innerHTML = streets.join("");
  if (!points.length) {
    $("courier").setAttribute("transform", "translate(-40,-40)");
    $("route").setAttribute("points", "");
    return;
  }
  const lats = points.map((p) => p.lat), lngs = points.map((p) => p.lng);
  const pad = 0.002;
  const [minLat, maxLat] = [Math.min(...lats) - pad, Math.max(...lats) + pad];
  const [minLng, maxLng] = [Math.min(...lngs) - pad, Math.max(...lngs) + pad];
  const project = (p) => [
    30 + ((p.lng - minLng) / (maxLng - minLng)) * 540,
    330 - ((p.lat - minLat) / (maxLat - minLat)) * 300,
  ];
  const xy = points.map(project);
  $("route").setAttribute("points", xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "));
  const [x, y] = xy[xy.length - 1];
  $("courier").setAttribute("transform", `translate(${x.toFixed(1)},${y.toFixed(1)})`);
  $("courier").dataset.lat = String(points[points.length - 1].lat);
  $("courier").dataset.lng = String(points[points.length - 1].lng);
  const [dx, dy] = xy[0];
  $("destination").setAttribute("cx", dx.toFixed(1));
  $("destination").setAttribute("cy", dy.toFixed(1));
}

$("user").onchange = (event) => quietly(signIn(event.target.value));
const preset = new URLSearchParams(window.location.search).get("user");
if (preset) {
  $("user").value = preset;
  quietly(signIn(preset));
}
