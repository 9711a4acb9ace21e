"""A TCP proxy that passes a registry's replies on at a fixed rate, for benches/pull_ahead.sh.

Usage: throttle_proxy.py LISTEN_PORT UPSTREAM_PORT BYTES_PER_SECOND

Each connection gets the whole rate (a registry serves each layer on a connection of its own,
so parallel layer downloads are each throttled, like per-stream limits of a busy mirror).
A TLS hello (the daemon tries HTTPS first) is closed at once so that Docker falls back to
plain HTTP.
"""

import socket
import sys
import threading
import time

CHUNK = 16 * 1024


def pump(src, dst, rate):
    started, sent = time.monotonic(), 0
    try:
        while True:
            data = src.recv(CHUNK)
            if not data:
                break
            dst.sendall(data)
            sent += len(data)
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client, upstream_port, rate):
    first = client.recv(1, socket.MSG_PEEK)
    if not first or first[0] == 0x16:
        client.close()
        return
    upstream = socket.create_connection(("127.0.0.1", upstream_port))
    threading.Thread(target=pump, args=(client, upstream, 0), daemon=True).start()
    pump(upstream, client, rate)


def main():
    listen, upstream, rate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen))
    server.listen(64)
    while True:
        client, _ = server.accept()
        threading.Thread(target=serve, args=(client, upstream, rate), daemon=True).start()


if __name__ == "__main__":
    main()
