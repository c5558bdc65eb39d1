#!/usr/bin/env python3
"""Writes the seeds of the tls_handshake fuzz target into tests/fuzz/corpus/tls_handshake/ (run
once, by hand, after changing them): ClientHellos made by Python's ssl module in memory-BIO mode
(no network), for TLS 1.2 and 1.3, with and without SNI, plus a few inputs that are not TLS; and
requests for the target's established mode (its own client makes the handshake).

Each seed starts with the target's two option bytes (see tests/fuzz/tls_handshake_fuzzer.cpp).

    python3 tests/fuzz/make_tls_seeds.py [corpus-dir]
"""
import os
import ssl
import sys

CORPUS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(name, data):
    folder = os.path.join(CORPUS, "tls_handshake")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as out:
        out.write(data)


def client_hello(version, server_name):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = version
    context.maximum_version = version
    context.set_alpn_protocols(["http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=False, server_hostname=server_name)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


for label, version in (("tls12", ssl.TLSVersion.TLSv1_2), ("tls13", ssl.TLSVersion.TLSv1_3)):
    for sni_label, name in (("no-sni", None), ("sni", "sni.test"), ("other-sni", "unknown.test")):
        hello = client_hello(version, name)
        write("%s-%s" % (label, sni_label), b"\x00\xff" + hello)
        # The same hello in small pieces.
        write("%s-%s-pieces" % (label, sni_label), b"\x07\x01" + hello)

write("plain-http", b"\x00\xffGET / HTTP/1.1\r\nHost: a\r\n\r\n")
write("sslv2-hello", b"\x00\xff\x80\x2e\x01\x00\x02\x00\x15" + bytes(range(0x15)) + b"\x00" * 16)
write("record-garbage", b"\x03\x02\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00\x17\x03\x03\x00\x00")
write("alert", b"\x00\xff\x15\x03\x03\x00\x02\x02\x28")

# Established mode: byte 0 from 0x80; byte 1: 0x01 TLS 1.2, 0x02 SNI, 0x04 KeyUpdate, 0x08 a flipped byte.
request = b"GET /whoami HTTP/1.1\r\nHost: sni.test\r\nCookie: stickyproxy=abc\r\n\r\n"
write("established-tls13", b"\x80\x00" + request)
write("established-tls12-sni", b"\x81\x03" + request * 3)
write("established-keyupdate", b"\x82\x06" + request * 40)
write("established-flipped", b"\x85\x28" + request * 4)
