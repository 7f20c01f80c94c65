#!/usr/bin/env python3
"""A go-plugin KV plugin written in Python (plain gRPC, optional manual TLS).

Behaves like go-plugin's examples/grpc/plugin-python: Put stores
VALUE + "\\n\\nWritten from plugin-python" in the file kv_KEY in the working
directory, Get returns that file's content.

Besides the KV service (proto package ``proto``) it serves what a go-plugin
host expects of a gRPC plugin:

* ``grpc.health.v1.Health`` with service "plugin" SERVING (used by Ping),
* ``plugin.GRPCController/Shutdown``: stops the server and exits with code 0,
* ``plugin.GRPCStdio/StreamStdio``: held open without sending anything until
  the host cancels it or the plugin shuts down.

It listens on 127.0.0.1 with an OS-chosen port and prints only the handshake
line ``1|1|tcp|127.0.0.1:PORT|grpc`` on stdout. SIGTERM and SIGINT also make it
exit promptly with code 0.

TLS (go-plugin's manual TLS, i.e. ServeConfig.TLSProvider; not AutoMTLS):
KV_PLUGIN_TLS_CERT and KV_PLUGIN_TLS_KEY (PEM files, both or neither) make it
serve with grpc.ssl_server_credentials; KV_PLUGIN_TLS_CLIENT_CA (PEM, only
with them) makes it require and verify a client certificate signed by that CA.
The handshake line does not change (no 6th field). PLUGIN_CLIENT_CERT is
ignored.

The Python stubs are generated at start-up with grpc_tools.protoc from the
repository's .proto files into a temporary directory, which is deleted as soon
as the generated modules are imported.
"""

import os
import shutil
import signal
import sys
import tempfile
import threading

COOKIE_KEY = "BASIC_PLUGIN"
COOKIE_VALUE = "hello"

# go-plugin's own message for a plugin run without the host's magic cookie.
NOT_A_PROGRAM = (
    "This binary is a plugin. These are not meant to be executed directly.\n"
    "Please execute the program that consumes these plugins, which will\n"
    "load any plugins automatically\n"
)

HERE = os.path.dirname(os.path.abspath(__file__))
KV_PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "examples", "kv", "proto"))
PLUGIN_PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "goplug", "proto"))


def fail(message):
    sys.stderr.write("kv_plugin.py: " + message + "\n")
    sys.stderr.flush()
    sys.exit(1)


def load_stubs():
    """Generates the protobuf/gRPC modules and imports them.

    Returns a dict of module name -> module for kv, grpc_controller and
    grpc_stdio (each with its _pb2 and _pb2_grpc modules).
    """
    import importlib
    import importlib.resources

    from grpc_tools import protoc

    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    protos = [
        (KV_PROTO_DIR, "kv.proto"),
        (PLUGIN_PROTO_DIR, "grpc_controller.proto"),
        (PLUGIN_PROTO_DIR, "grpc_stdio.proto"),
    ]
    for directory, name in protos:
        if not os.path.isfile(os.path.join(directory, name)):
            fail("missing proto file " + os.path.join(directory, name))

    out_dir = tempfile.mkdtemp(prefix="goplug-kv-plugin-")
    try:
        args = [
            "grpc_tools.protoc",
            "-I" + KV_PROTO_DIR,
            "-I" + PLUGIN_PROTO_DIR,
            "-I" + well_known,
            "--python_out=" + out_dir,
            "--grpc_python_out=" + out_dir,
        ] + [name for _, name in protos]
        if protoc.main(args) != 0:
            fail("protoc failed to compile " + ", ".join(n for _, n in protos))

        sys.dont_write_bytecode = True
        sys.path.insert(0, out_dir)
        try:
            modules = {}
            for _, name in protos:
                base = name[: -len(".proto")]
                for suffix in ("_pb2", "_pb2_grpc"):
                    modules[base + suffix] = importlib.import_module(base + suffix)
            return modules
        finally:
            sys.path.remove(out_dir)
    finally:
        # Everything is imported (or failed): the files are not needed anymore.
        shutil.rmtree(out_dir, ignore_errors=True)


def read_file(env, path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        fail("%s: %s" % (env, e))


def server_credentials(grpc):
    """Returns grpc.ssl_server_credentials from KV_PLUGIN_TLS_*, or None."""
    cert_file = os.environ.get("KV_PLUGIN_TLS_CERT", "")
    key_file = os.environ.get("KV_PLUGIN_TLS_KEY", "")
    ca_file = os.environ.get("KV_PLUGIN_TLS_CLIENT_CA", "")
    if not cert_file and not key_file:
        if ca_file:
            fail("KV_PLUGIN_TLS_CLIENT_CA needs KV_PLUGIN_TLS_CERT and KV_PLUGIN_TLS_KEY")
        return None
    if not cert_file or not key_file:
        fail("KV_PLUGIN_TLS_CERT and KV_PLUGIN_TLS_KEY go together")
    cert = read_file("KV_PLUGIN_TLS_CERT", cert_file)
    key = read_file("KV_PLUGIN_TLS_KEY", key_file)
    ca = read_file("KV_PLUGIN_TLS_CLIENT_CA", ca_file) if ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )


def serve():
    import grpc
    from concurrent import futures
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    creds = server_credentials(grpc)
    stubs = load_stubs()
    kv_pb2 = stubs["kv_pb2"]
    kv_pb2_grpc = stubs["kv_pb2_grpc"]
    controller_pb2 = stubs["grpc_controller_pb2"]
    controller_pb2_grpc = stubs["grpc_controller_pb2_grpc"]
    stdio_pb2_grpc = stubs["grpc_stdio_pb2_grpc"]

    shutdown = threading.Event()

    class KV(kv_pb2_grpc.KVServicer):
        def Get(self, request, context):
            with open("kv_" + request.key, "rb") as f:
                return kv_pb2.GetResponse(value=f.read())

        def Put(self, request, context):
            with open("kv_" + request.key, "wb") as f:
                f.write(request.value + b"\n\nWritten from plugin-python")
            return kv_pb2.Empty()

    class Controller(controller_pb2_grpc.GRPCControllerServicer):
        def Shutdown(self, request, context):
            # The main thread stops the server (letting this reply go out)
            # and exits.
            shutdown.set()
            return controller_pb2.Empty()

    class Stdio(stdio_pb2_grpc.GRPCStdioServicer):
        def StreamStdio(self, request, context):
            # Nothing of ours goes to the host: keep the stream open and
            # empty until the host cancels it or we shut down.
            done = threading.Event()
            context.add_callback(done.set)
            while not done.is_set() and not shutdown.is_set():
                done.wait(0.2)
            return iter(())

    health_servicer = health.HealthServicer()
    health_servicer.set("plugin", health_pb2.HealthCheckResponse.SERVING)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    kv_pb2_grpc.add_KVServicer_to_server(KV(), server)
    controller_pb2_grpc.add_GRPCControllerServicer_to_server(Controller(), server)
    stdio_pb2_grpc.add_GRPCStdioServicer_to_server(Stdio(), server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if creds is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        try:
            port = server.add_secure_port("127.0.0.1:0", creds)
        except RuntimeError as e:
            # grpcio checks the PEM data only here (and logs why on stderr).
            fail("could not listen on 127.0.0.1 with KV_PLUGIN_TLS_*: %s" % e)
    if not port:
        fail("could not listen on 127.0.0.1")

    def on_signal(signum, frame):
        shutdown.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server.start()
    sys.stdout.write("1|1|tcp|127.0.0.1:%d|grpc\n" % port)
    sys.stdout.flush()

    # Poll so that signal handlers run promptly in this (main) thread.
    while not shutdown.wait(0.1):
        pass

    # A short grace period lets the in-flight Shutdown reply reach the host.
    server.stop(grace=1.0).wait(2.0)


def main():
    if os.environ.get(COOKIE_KEY) != COOKIE_VALUE:
        sys.stderr.write(NOT_A_PROGRAM)
        sys.stderr.flush()
        sys.exit(1)
    serve()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown, which would join gRPC's worker threads.
    os._exit(0)


if __name__ == "__main__":
    main()
