#!/usr/bin/env python3
"""Writes the text seeds of the fuzz targets into tests/fuzz/corpus/<target>/ (run once, by hand,
when the seeds need remaking; the output is committed). The zip and shapefile seeds are binary and
made with the project's own code by make_seeds.cpp.

    python3 tests/fuzz/make_seeds.py [CORPUS_DIR]

The HTTP and multipart targets read two control bytes first (see each *_fuzzer.cpp): byte 0 seeds
the piece sizes of the split run, byte 1 the largest piece and options.
"""
import os
import sys

CORPUS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode("latin-1")
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as out:
        out.write(data)


def http(seed, options, stream):
    return bytes([seed, options]) + stream.encode("latin-1")


# request_head: byte 1 = largest piece - 1 (low 6 bits) | 0x80 for tiny limits.
REQUESTS = {
    "get": "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n",
    "post-length": "POST /api/upload HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    "post-chunked": "POST /api HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "pipelined": "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "hop-by-hop": "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\n"
                  "TE: trailers\r\nUpgrade: h2c\r\nX-Sticky-Previous-Worker: w9\r\nX-Forwarded-For: 10.1.1.1\r\n\r\n",
    "http10-cookie": "GET /x HTTP/1.0\r\nCookie: stickyproxy=0123456789abcdef0123456789abcdef; a=b\r\n\r\n",
    "expect": "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "absolute-form": "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\nGET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    "smuggle-cl-te": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "smuggle-obs-fold": "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\nTransfer_Encoding: chunked\r\n\r\n",
}
for i, (name, stream) in enumerate(REQUESTS.items()):
    write("request_head", name, http(i * 37 % 256, 7 + i, stream))
write("request_head", "tiny-limits", http(3, 0x80 | 15, REQUESTS["post-length"]))

# response_head: byte 1 bit 6 = the responses answer HEAD.
RESPONSES = {
    "ok-length": "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello",
    "chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
    "until-close": "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody runs to close",
    "continue-then-ok": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nSet-Cookie: a=b; Path=/\r\n\r\n",
    "not-modified": "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    "sse": "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
           "e\r\ndata: hello\r\n\r\n\r\n0\r\n\r\n",
}
for i, (name, stream) in enumerate(RESPONSES.items()):
    write("response_head", name, http(i * 53 % 256, 9 + i, stream))
write("response_head", "answers-head", http(11, 0x40 | 5, RESPONSES["ok-length"]))

# chunked_body: byte 1 bit 6 = response, bit 7 = 64-byte body limit; the rest follows the head.
CHUNKED = {
    "two-chunks": "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    "extensions-trailers": "4;name=value\r\nwiki\r\n5;a;b=\"c\"\r\npedia\r\n0\r\nExpires: never\r\nX-A: b\r\n\r\n",
    "upper-hex": "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
    "pipelined-after": "3\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n",
}
for i, (name, body) in enumerate(CHUNKED.items()):
    write("chunked_body", name, http(i * 71 % 256, 3 + i, body))
write("chunked_body", "response", http(5, 0x40 | 9, CHUNKED["two-chunks"]))
write("chunked_body", "over-limit", http(6, 0x80 | 9, "41\r\n" + "x" * 65 + "\r\n0\r\n\r\n"))

# multipart: then the Content-Type value up to LF, then the body.
MULTIPART = (
    "--XyZ\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\nabc\r\n"
    "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"wards.csv\"\r\n"
    "Content-Type: text/csv\r\n\r\nWardName,x\r\nA,1\r\n--XyZ--\r\n"
)
write("multipart", "two-parts", http(1, 13, "multipart/form-data; boundary=XyZ\n" + MULTIPART))
write("multipart", "quoted-boundary", http(2, 4, "multipart/form-data; charset=utf-8; boundary=\"a'b(c)+_,-./:=? d\"\n"
                                            "preamble\r\n--a'b(c)+_,-./:=? d  \r\nContent-Disposition: form-data; name=x\r\n\r\n"
                                            "\r\n--a'b(c)+_,-./:=? d\r\n--a'b(c)+_,-./:=? dx--\r\n--a'b(c)+_,-./:=? d--epilogue"))
write("multipart", "tiny-limits", http(3, 0x80 | 6, "multipart/form-data;boundary=b\n" +
                                        "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n" * 5 + "--b--"))

# cookie: byte 0 bit 0 = look for "SESSIONID" instead of "stickyproxy", bit 7 = 40-byte cap.
KEY = "0123456789abcdef0123456789abcdef"
write("cookie", "legacy", b"\x00stickyproxy=" + KEY.encode() + b"; theme=dark")
write("cookie", "signed-shape", b"\x00a=1;stickyproxy=\"" + KEY.encode() + b".00112233445566778899aabbccddeeff\"")
write("cookie", "pinned-shape", b"\x80 stickyproxy = " + KEY.encode() + b".w2.65a1b2c3.00112233445566778899aabbccddeeff ;x")
write("cookie", "app-cookie", b"\x01SESSIONID=abc%20def; stickyproxy=; SESSIONID=second")

# config: the shipped configs are seeds too (copied by this script).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for name in ("prod.conf", "dev.conf"):
    with open(os.path.join(ROOT, "conf", name), "rb") as source:
        write("config", name, source.read())
write("config", "minimal.conf", "[proxy]\nlisten = 127.0.0.1:0\n\n[worker a]\naddress = 127.0.0.1:9001\n")
write("config", "errors.conf", "[proxy]\nlisten = 1.2.3.4:99999\nbogus = 1\n[timeouts]\nqueue = -5s\n[worker]\n"
                               "[worker w1]\naddress = unix:w1.sock\ncommand = run\nargs = \"a b\" 'c' {name}\nenv = A=1 B=\"2 3\"\n"
                               "[worker w1]\naddress = [::1]:80\n[routing]\ncookie_name = a;b\nkey_source = app_cookie\n")

# admin_command: lines as sent to the admin socket.
write("admin_command", "every-command", "help\nshow workers\nshow sessions\nshow sessions w1\ndrain w1\n"
                                        "drain w1 wait 5\nready w1\nevict w2\nrestart w1 30\nreload\n")
write("admin_command", "json", "show workers json\r\nshow sessions w2 json\r\ndrain w9 json\r\nrestart w1 json\r\n")
write("admin_command", "errors", "\n  \t\nshow\ndrain\ndrain w1 wait 3601\ndrain w1 soon\nhelp me\n\x01\xff json\n")

# state_file: as SessionTable::save() writes it.
ENTRY = ('{"announce_previous": %s, "key_hash": "%s", "last_seen_ms": %d, "moved_at_ms": %d, '
         '"previous_worker": "%s", "worker": "%s"}')
entries = [
    ENTRY % ("true", "00000000000000ff", 1699999000000, 1699998000000, "w1", "w2"),
    ENTRY % ("false", "0123456789abcdef", 1700000000000, 1700000000000, "w3", "w3"),
    ENTRY % ("true", "fedcba9876543210", 1000, 1000, "", "w4"),
]
write("state_file", "three-entries", '{"entries": [%s], "format": "stickyproxy-moved-sessions", "version": 1}\n'
      % ",\n  ".join(entries))
write("state_file", "old-format-no-moved-at", '{"format":"stickyproxy-moved-sessions","version":1,"entries":'
      '[{"key_hash":"0000000000000002","worker":"w1","previous_worker":"w2","announce_previous":false,'
      '"last_seen_ms":1700000000001}]}')
write("state_file", "empty", '{"format":"stickyproxy-moved-sessions","version":1,"entries":[]}')

# worker_states: as RoutingState::saveDrainedWorkers() writes it (the fuzz config has w1, w2, w-3).
write("worker_states", "one-drained", '{"format":"stickyproxy-worker-states","version":1,"draining":["w2"]}\n')
write("worker_states", "mixed", '{"draining":["w1","w-3","w9",7,null,"w1"],"version":1,"format":"stickyproxy-worker-states"}')
write("worker_states", "none", '{"format":"stickyproxy-worker-states","version":1,"draining":[]}')

# csv: byte 0 bit 0 = WardName required, bit 1 = tiny caps.
write("csv", "wards", b"\x01" + "WardName,WardCode,pop,rate\r\nAlpha,NIS01,1200,0.5\r\nBeta,NIS02,NA,1e-3\r\n".encode())
write("csv", "quoted", b"\x00" + "\xef\xbb\xbf\"a\",\"b, c\",\n\"x\"\"y\",\"multi\nline\",3\r1,2,\r\n\n".encode("latin-1"))
write("csv", "unicode-missing", b"\x02" + "name, value ,\nZ\u00fcrich,N/A,\n\u65e5\u672c,+4.5,null\n".encode("utf-8"))
