"""A server stopping while a WebSocket's peer is closing it: the shutdown closes every
connection and finishes, whatever state each one is in."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Scope, Send
from websockets.sync.client import connect

from cybergine.web.threaded import ThreadedServer

_LIFESPAN: list[str] = []


async def _flooding_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts a WebSocket and sends to it without end: a peer that does not read fills
    every buffer on the way, so what the server writes after that stays unsent."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            _LIFESPAN.append(message["type"])
            await send({"type": f"{message['type']}.complete"})
            if message["type"] == "lifespan.shutdown":
                return
    assert scope["type"] == "websocket"
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        await send({"type": "websocket.send", "bytes": bytes(1 << 16)})


def _until(condition: Callable[[], Any], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_socket_its_peer_is_closing_does_not_break_the_shutdown() -> None:
    _LIFESPAN.clear()
    # The app's send waits for the peer until the graceful timeout cancels it.
    server = ThreadedServer(_flooding_app, name="socket server", lifespan="on", graceful_seconds=1)
    # Small buffers at both ends (the kernel's grow to megabytes), which the accepted
    # connection takes from the listening socket.
    server._socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    server.start()
    errors: list[BaseException | None] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda failure: errors.append(failure.exc_value)
    try:
        # The client reads a message ahead at most, then leaves the rest in the buffers.
        peer = socket.socket()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        peer.connect(("127.0.0.1", server.port))
        client = connect(f"ws://127.0.0.1:{server.port}/", sock=peer, max_queue=1)
        (connection,) = server.server.server_state.connections
        _until(lambda: connection.transport.get_write_buffer_size() > 0)
        # The peer says goodbye while the server still has bytes for it: the server
        # answers, and its connection stays open until those bytes are gone.
        client.protocol.send_close(1000)
        client.socket.sendall(b"".join(client.protocol.data_to_send()))
        _until(lambda: connection.conn.close_rcvd is not None)
        server.stop()
        assert not server._thread.is_alive()
        client.socket.close()
    finally:
        threading.excepthook = previous_hook
    assert errors == []
    assert _LIFESPAN == ["lifespan.startup", "lifespan.shutdown"]  # the app's own shutdown ran
