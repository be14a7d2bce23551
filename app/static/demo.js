// The /demo page: a notification bell and a live order-tracking map, wired with push-client.js.
import { PushClient } from "/static/push-client.js";

const $ = (id) => document.getElementById(id);
const NORMAL_PATH = ["PENDING", "CONFIRMED", "PROCESSING", "SHIPPED", "OUT_FOR_DELIVERY", "DELIVERED"];
const state = { token: null, userId: null, client: null, order: null, unsubscribeOrder: null, route: [] };

async function api(path, init = {}) {
  const headers = { ...(init.headers || {}), Authorization: `Bearer ${state.token}` };
  if (init.body) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { ...init, headers });
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
    onResync: (channel) => (channel.startsWith("order:") ? loadTracking(state.order) : loadNotifications()),
    ...(transports ? { transports } : {}),
  });
  state.client.on(`user:${userId}`, onUserEvent);
  state.client.start();
  await Promise.all([loadNotifications(), loadOrders()]);
}

// ---- the bell ----

function setBadge(count) {
  $("badge").textContent = String(count);
  $("badge").hidden = count === 0;
  document.body.dataset.unread = String(count);
}

function renderNotification(n) {
  const li = document.createElement("li");
  li.dataset.id = n.id;
  li.className = n.isRead ? "" : "unread";
  li.innerHTML = `<strong></strong><div></div><small></small>`;
  li.querySelector("strong").textContent = n.title;
  li.querySelector("div").textContent = n.message;
  li.querySelector("small").textContent = new Date(n.createdAt).toLocaleString();
  li.onclick = () => api(`/notifications/${n.id}/read`, { method: "PATCH" });
  return li;
}

async function loadNotifications() {
  const [page, count] = await Promise.all([api("/notifications?limit=20"), api("/notifications/unread-count")]);
  $("notifications").replaceChildren(...page.items.map(renderNotification));
  setBadge(count.count);
}

function onUserEvent(event) {
  if (event.type === "notification.created") {
    $("notifications").prepend(renderNotification(event.data));
  } else if (event.type === "notification.unread_count") {
    setBadge(event.data.count);
  } else if (event.type === "notification.read") {
    for (const li of $("notifications").children) {
      if (event.data.all || (event.data.ids || []).includes(li.dataset.id)) li.className = "";
    }
  } else if (event.type === "order.created" || event.type === "order.status_changed") {
    const moving = ["SHIPPED", "OUT_FOR_DELIVERY"].includes(event.data.toStatus);
    loadOrders().then(() => {
      if (moving && event.data.orderId !== state.order) selectOrder(event.data.orderId);
    });
  }
}

$("bell").onclick = () => {
  const open = $("dropdown").hidden;
  $("dropdown").hidden = !open;
  $("bell").setAttribute("aria-expanded", String(open));
};
$("read-all").onclick = () => api("/notifications/read-all", { method: "PATCH" });

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
    li.onclick = () => selectOrder(order.id);
    return li;
  });
  $("orders").replaceChildren(...items);
  if (!state.order && page.items.length) {
    const moving = page.items.find((o) => ["SHIPPED", "OUT_FOR_DELIVERY"].includes(o.status)) || page.items[0];
    selectOrder(moving.id);
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

$("user").onchange = (event) => signIn(event.target.value);
const preset = new URLSearchParams(window.location.search).get("user");
if (preset) {
  $("user").value = preset;
  signIn(preset);
}
