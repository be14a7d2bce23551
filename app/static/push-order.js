// push-order.js: each channel's events once and in offset order, for push-client.js. A dependency-free ES module.
//
// On one connection the server sends a channel's events in offset order, replay first, with one
// exception: a resubscribe (with `since`) of a channel that is already live may get live events ahead
// of its replay. Across reconnects an event may come twice. ChannelOrder hands the page every event
// of a channel once, in offset order, and never drops an event it has not delivered. Per channel
// (and epoch) it keeps:
//   mark   every seq up to it was delivered, or will never come (a gap the server left on a live
//          connection, where it sends in order: a queued location replaced by a newer one);
//   above  seqs above the mark delivered out of order (only when too many events were held);
//   held   while a resume is pending, live events that came ahead of its replay: delivered behind it.
// See docs/client.md, "Offsets, order and duplicates".

const MAX_HELD = 1000; // events held behind one pending replay; past that they are delivered at once
const MAX_ABOVE = 5000; // seqs remembered above the mark; past that the pending replay is given up

/** `<epoch>:<seq>` as {epoch, seq}, or null. */
export function parseOffset(text) {
  if (typeof text !== "string") return null;
  const at = text.lastIndexOf(":");
  if (at < 1) return null;
  const seq = Number(text.slice(at + 1));
  return Number.isInteger(seq) && seq >= 0 ? { epoch: text.slice(0, at), seq } : null;
}

class ChannelState {
  constructor(epoch, mark) {
    this.epoch = epoch;
    this.mark = mark; // null: the next event starts the sequence (after a reset followed by a replay)
    this.above = new Set();
    this.held = new Map(); // seq -> event message
    this.resume = null; // {viaUrl, ack: {epoch, seq} | null} from the resume request to the end of its replay
  }

  seen(seq) {
    return (this.mark !== null && seq <= this.mark) || this.above.has(seq) || this.held.has(seq);
  }

  /** Record `seq` as delivered. */
  advance(seq) {
    if (this.mark !== null && seq <= this.mark) return;
    if (this.mark === null || seq === this.mark + 1 || !this.resume) {
      // In order; or a gap on a connection that sends in order, which will not be filled: move on.
      this.mark = seq;
      for (const other of this.above) if (other <= seq) this.above.delete(other);
    } else {
      this.above.add(seq);
    }
    while (this.above.delete(this.mark + 1)) this.mark += 1;
  }

  /** Held events that follow the mark, then everything held once the pending replay is complete. */
  settle() {
    const out = [];
    while (this.mark !== null && this.held.has(this.mark + 1)) {
      const next = this.mark + 1;
      out.push(this.held.get(next));
      this.held.delete(next);
      this.advance(next);
    }
    const ack = this.resume && this.resume.ack;
    if (ack && this.mark !== null && (ack.epoch !== this.epoch || this.mark >= ack.seq)) {
      this.resume = null; // the replay is over: gaps among the held events will not be filled
      out.push(...this.release());
    }
    return out;
  }

  /** Every held event, in offset order, now. */
  release() {
    const seqs = [...this.held.keys()].sort((a, b) => a - b);
    const out = seqs.map((seq) => this.held.get(seq));
    this.held.clear();
    for (const seq of seqs) this.advance(seq);
    if (this.above.size > MAX_ABOVE) {
      this.resume = null; // the replay never came: stop waiting for it
      this.advance(Math.max(...this.above));
    }
    return out;
  }
}

export class ChannelOrder {
  constructor() {
    this.channels = new Map(); // channel -> ChannelState
  }

  /** Where `channel` resumes from (`<epoch>:<seq>`), or null when it has no position yet. */
  position(channel) {
    const state = this.channels.get(channel);
    return state && state.mark !== null ? `${state.epoch}:${state.mark}` : null;
  }

  /** Every channel's position: {channel: "<epoch>:<seq>"}. */
  positions() {
    const positions = {};
    for (const channel of this.channels.keys()) {
      const position = this.position(channel);
      if (position) positions[channel] = position;
    }
    return positions;
  }

  /**
   * A resume of `channel` is being requested: answers the `since` to send (null: nothing to resume).
   * Until its replay is complete, live events ahead of it are held. `viaUrl`: since on the /ws URL.
   */
  resume(channel, viaUrl = false) {
    const since = this.position(channel);
    if (since !== null) this.channels.get(channel).resume = { viaUrl, ack: null };
    return since;
  }

  /** The transport dropped: held events come again with the next resume (they are above the position). */
  interrupt() {
    for (const state of this.channels.values()) {
      state.held.clear();
      state.resume = null;
    }
  }

  /**
   * A `subscribed` message. Answers {deliver: events to hand to the page now, resync: the page should
   * refetch the channel over REST, resubscribe: the server ignored `since` on the URL (an older server):
   * send a subscribe with since}.
   */
  acknowledge(message) {
    const result = { deliver: [], resync: false, resubscribe: false };
    const offset = parseOffset(message.offset);
    if (!offset) return result;
    let state = this.channels.get(message.channel);
    if (message.recovered === false) {
      // History did not reach back, or a new epoch began: the sequence goes on from `offset`, or, when
      // events are replayed behind this message, they lead up to `offset` and the first one starts it.
      result.resync = Boolean(state);
      const next = new ChannelState(offset.epoch, message.replayed > 0 ? null : offset.seq);
      if (state && state.epoch === offset.epoch) next.held = state.held;
      else if (state) result.deliver.push(...state.release());
      if (state && state.resume) next.resume = { viaUrl: false, ack: offset };
      this.channels.set(message.channel, next);
      result.deliver.push(...next.settle());
      return result;
    }
    if (!state) {
      this.channels.set(message.channel, new ChannelState(offset.epoch, offset.seq));
      return result;
    }
    if (state.mark === null && state.epoch === offset.epoch) state.mark = offset.seq;
    if (!state.resume) return result; // a channel already positioned: its events advance it themselves
    const ignored = offset.epoch !== state.epoch || (state.mark !== null && offset.seq > state.mark);
    if (state.resume.viaUrl && message.replayed === 0 && ignored) {
      state.resume.viaUrl = false; // the channel is live from `offset` already: what precedes it is held
      result.resubscribe = true;
      return result;
    }
    state.resume.ack = offset;
    result.deliver.push(...state.settle());
    return result;
  }

  /** An `event` message: answers the events to hand to the page now, in offset order (often just it). */
  accept(message) {
    const offset = parseOffset(message.offset);
    if (!offset) return [message]; // published without history: nothing to order it by
    const out = [];
    let state = this.channels.get(message.channel);
    if (!state || state.epoch !== offset.epoch) {
      if (state) out.push(...state.release());
      state = new ChannelState(offset.epoch, null);
      this.channels.set(message.channel, state);
    }
    const seq = offset.seq;
    if (state.seen(seq)) return out;
    if (state.resume && state.mark !== null && seq > state.mark + 1) {
      state.held.set(seq, message); // ahead of the replay that is on its way
      if (state.held.size > MAX_HELD) out.push(...state.release());
      return out;
    }
    out.push(message);
    state.advance(seq);
    out.push(...state.settle());
    return out;
  }
}
