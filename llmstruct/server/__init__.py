"""llmstruct's HTTP + WebSocket server (the HTTP layer of DESIGN.md).

Where things are:

* ``limits.py`` -- every limit and timeout, with its precedent;
* ``protocol.py`` -- the protocol per connection (keep-alive, pipelining,
  timers, flow control, the hand-over to WebSocket) and what connections share;
* ``http_common.py`` -- the driver interface, the request policy both parser
  backends apply, response serialisation; ``http_h11.py`` and
  ``http_httptools.py`` -- the two backends (``--http h11|httptools|auto``; the
  httptools driver itself is a twin in ``llmstruct._ext``, as the head policy is);
* ``listener.py`` -- the accept loop (connection cap, backpressure) and
  graceful shutdown of one worker;
* ``app.py`` -- Request/Response objects, routing (``llmstruct._ext.router``) and
  the middleware chain; ``middleware.py``, ``metrics.py`` -- the chain itself;
* ``auth.py`` -- the API key file and the loopback rule; ``config.py`` -- settings
  from defaults, ``llmstruct.toml``, ``LLMSTRUCT_*`` and flags;
* ``system.py`` -- health and metrics endpoints, the assembled app;
* ``serve.py`` -- ``llmstruct serve``: workers, signals, systemd readiness;
* ``websocket.py``, ``ws_*.py`` -- WebSocket connections on wsproto.

The per-request code is in ``llmstruct._ext`` as twins (a pure ``_<name>_py.py``
and its compiled build): ``app.py``, ``protocol.py``, ``middleware.py`` and
``metrics.py`` here re-export what the selectors there loaded.
"""
