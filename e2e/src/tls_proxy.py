"""A TLS-terminating TCP proxy for tests: takes TLS connections (ALPN h2, as gRPC clients
offer), optionally only from clients with a certificate signed by --client-ca, and forwards
the plaintext bytes to 127.0.0.1:--target. It stands in front of `temporal server start-dev`
(which has no TLS options) as Temporal Cloud's or a TLS load balancer's frontend would."""
import argparse
import asyncio
import ssl


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer, target):
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))


async def serve(arguments):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(arguments.cert, arguments.key)
    context.set_alpn_protocols(["h2"])
    if arguments.client_ca:
        context.load_verify_locations(arguments.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    server = await asyncio.start_server(lambda reader, writer: handle(reader, writer, arguments.target), "127.0.0.1", arguments.port, ssl=context)
    async with server:
        await server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
