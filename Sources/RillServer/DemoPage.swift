/// The page `GET /` serves, built into the binary: an EventSource client of topic `time` that shows
/// the server's clock as the ticker publishes it, the stream's state, and a box to publish to a
/// `demo` topic it also listens to.
enum DemoPage {
    static let html: [UInt8] = Array(
        #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>rill — server-sent events</title>
        <style>
          body { font: 16px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; padding: 0 1rem; color: #222; }
          h1 { font-size: 1.3rem; margin-bottom: .2rem; }
          #clock { font: 600 2.6rem/1.2 ui-monospace, monospace; margin: 1.2rem 0 .4rem; }
          .muted { color: #777; font-size: .9rem; }
          #state.open { color: #18794e; } #state.closed { color: #b42318; }
          form { display: flex; gap: .5rem; margin-top: 1.5rem; }
          input { flex: 1; font: inherit; padding: .3rem .5rem; }
          ul { padding-left: 1.2rem; } li { font-family: ui-monospace, monospace; }
        </style>
        </head>
        <body>
        <h1>rill: server-sent events</h1>
        <div class="muted">This page holds one <code>EventSource</code> on <code>/sse?topic=time&amp;topic=demo</code>.
        The server publishes its clock to topic <code>time</code> every tick.</div>
        <div id="clock">waiting for the server…</div>
        <div class="muted">stream: <span id="state">connecting</span> · events: <span id="count">0</span> ·
        last id: <span id="last-id">none</span></div>
        <form id="publish"><input id="message" placeholder="publish to topic demo" autocomplete="off">
        <button>Publish</button></form>
        <ul id="messages"></ul>
        <script>
        const clock = document.getElementById("clock");
        const state = document.getElementById("state");
        const count = document.getElementById("count");
        const lastId = document.getElementById("last-id");
        const messages = document.getElementById("messages");
        let received = 0;
        const source = new EventSource("/sse?topic=time&topic=demo");
        function seen(event) {
          received += 1;
          count.textContent = received;
          lastId.textContent = event.lastEventId || "none";
        }
        source.onopen = () => { state.textContent = "open"; state.className = "open"; };
        source.onerror = () => { state.textContent = "reconnecting"; state.className = "closed"; };
        source.addEventListener("time", (event) => {
          seen(event);
          const time = new Date(event.data);
          clock.textContent = isNaN(time) ? event.data : time.toISOString().slice(11, 19) + " UTC";
          clock.dataset.serverTime = event.data;
        });
        source.onmessage = (event) => {
          seen(event);
          const item = document.createElement("li");
          item.textContent = event.data;
          messages.prepend(item);
          while (messages.children.length > 20) messages.lastChild.remove();
        };
        document.getElementById("publish").onsubmit = (event) => {
          event.preventDefault();
          const input = document.getElementById("message");
          if (input.value) fetch("/publish?topic=demo", { method: "POST", body: input.value });
          input.value = "";
        };
        </script>
        </body>
        </html>

        """#.utf8)
}
