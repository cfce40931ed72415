/**
 * The page's one WebSocket to /v1/stream (docs/protocol.md). Many generations share it: each `generate` frame
 * carries an id, and every server frame with that id goes to the listener registered for it. When the socket
 * closes, every listener hears a `{type: 'lost'}` pseudo-frame (the server has cancelled those generations) and
 * the connection retries with exponential backoff, except after 1008 (a wrong API key will not get better).
 */
const CLOSE_WORDS = {
  1001: 'The server is shutting down.',
  1006: 'The connection to the server was lost.',
  1008: 'The server needs an API key: open this page as /?api_key=YOUR_KEY.',
  1009: 'The page sent a frame larger than the server accepts.',
};

export class StreamConnection {
  #url;
  #onStatus;
  #ws = null;
  #listeners = new Map(); // generation id → (frame) => void
  #retries = 0;
  #timer = 0;

  /** onStatus({state: 'connecting' | 'open' | 'retrying' | 'closed', message?, retryInMs?}) */
  constructor(url, onStatus) {
    this.#url = url;
    this.#onStatus = onStatus;
  }

  get isOpen() {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  connect() {
    clearTimeout(this.#timer);
    if (this.#ws && this.#ws.readyState <= WebSocket.OPEN) return; // already connecting or open
    this.#onStatus({ state: 'connecting' });
    const ws = new WebSocket(this.#url);
    this.#ws = ws;
    ws.onopen = () => {
      this.#retries = 0;
      this.#onStatus({ state: 'open' });
    };
    ws.onmessage = (event) => this.#dispatch(JSON.parse(event.data));
    ws.onclose = (event) => this.#closed(event);
  }

  /** Sends a generate frame; listener receives its start / token / done / error frames (or `lost`). */
  generate(frame, listener) {
    this.#listeners.set(frame.id, listener);
    this.#ws.send(JSON.stringify(frame));
  }

  /** Ends a generation at the server's next engine step; it still receives its `done` (finish_reason "cancelled"). */
  cancel(id) {
    if (this.isOpen && this.#listeners.has(id)) this.#ws.send(JSON.stringify({ type: 'cancel', id }));
  }

  #dispatch(frame) {
    const listener = this.#listeners.get(frame.id);
    if (!listener) {
      // An error without an id is about a frame, not a generation (the page should never cause one).
      if (frame.type === 'error') this.#onStatus({ state: 'open', message: frame.message });
      return;
    }
    if (frame.type === 'done' || frame.type === 'error') this.#listeners.delete(frame.id);
    listener(frame);
  }

  #closed(event) {
    const message = CLOSE_WORDS[event.code] ?? `The connection closed (code ${event.code}${event.reason ? `: ${event.reason}` : ''}).`;
    for (const listener of this.#listeners.values()) listener({ type: 'lost', message });
    this.#listeners.clear();
    if (event.code === 1008) {
      this.#onStatus({ state: 'closed', message });
      return;
    }
    // 0.5 s, 1 s, 2 s … up to 10 s, with jitter so that many pages do not return at the same instant.
    const retryInMs = Math.min(10_000, 500 * 2 ** this.#retries++) * (0.75 + Math.random() / 2);
    this.#onStatus({ state: 'retrying', message, retryInMs });
    this.#timer = setTimeout(() => this.connect(), retryInMs);
  }
}
