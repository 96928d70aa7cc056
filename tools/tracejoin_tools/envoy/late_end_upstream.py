"""A loopback HTTP/2 (prior knowledge) upstream that answers every request with a
Content-Length body and ends the stream only later, with an empty DATA frame: Envoy then
writes a whole HTTP/1 answer to its client while the stream is still open, and its HTTP/1
codec reads nothing more until the stream ends. Records each request (path and body).

For the network position's test of answers framed before their stream ends
(`tests/integration/test_network_handback.py`). Uses python-hyper's h2.
"""

import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from tracejoin_tools.envoy.recording_upstream import LoopbackUpstream


class LateEndUpstream(LoopbackUpstream):
    """`requests` lists (path, body) in arrival order."""

    def __init__(self, late=0.5):
        super().__init__()
        self.late = late

    def paths_and_bodies(self):
        with self.lock:
            return list(self.requests)

    def _serve(self, conn):
        h2c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        h2c.initiate_connection()
        conn.sendall(h2c.data_to_send())
        paths, bodies = {}, {}
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                for event in h2c.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        paths[event.stream_id] = dict(event.headers).get(":path", "")
                        bodies[event.stream_id] = b""
                    elif isinstance(event, h2.events.DataReceived):
                        bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
                        h2c.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        sid = event.stream_id
                        with self.lock:
                            self.requests.append((paths.get(sid), bodies.get(sid, b"")))
                        h2c.send_headers(sid, [(":status", "200"), ("content-length", "2")])
                        h2c.send_data(sid, b"ok")
                        conn.sendall(h2c.data_to_send())
                        # The body is whole; the stream ends later.
                        time.sleep(self.late)
                        h2c.send_data(sid, b"", end_stream=True)
                conn.sendall(h2c.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            # Envoy's span reports reach this port too, over HTTP/1: not ours to answer.
            return
        finally:
            conn.close()
