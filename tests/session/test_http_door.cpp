// The HTTP front door through a real Session (loopback sockets, fake host): rooms hashed over
// the backends, the replayed head (X-Forwarded-For, X-Forwarded-Proto), the WebSocket upgrade
// relayed, keep-alive connections whose requests are routed each on its own over pooled backend
// connections, and refusals as HTTP responses.
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <array>
#include <set>

#include "fake_host.hpp"
#include "routing/rendezvous.hpp"
#include "upstream/backend_state.hpp"
#include "upstream/bosh_sessions.hpp"

using namespace xs;
using namespace xs::test;
using session::State;

namespace {

std::string http_config(int pa, int pb, const std::string& b_extra = "", const std::string& l_extra = "") {
    return "[proxy]\nheader_timeout = \"300ms\"\nclose_linger = \"300ms\"\n"
           "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\nprotocol = \"http\"\n" + l_extra +
           "[[backend]]\nname = \"shard-1\"\naddress = \"127.0.0.1:" + std::to_string(pa) + "\"\n"
           "[[backend]]\nname = \"shard-2\"\naddress = \"127.0.0.1:" + std::to_string(pb) + "\"\n" + b_extra +
           "[[route]]\nname = \"rooms\"\ndomains = [\"meet.example.com\"]\n"
           "backends = [\"shard-1\", \"shard-2\"]\nbalance = \"hash\"\nhash_key = \"room\"\n";
}

std::string upgrade(const std::string& room, const std::string& host = "meet.example.com") {
    return "GET /xmpp-websocket?room=" + room + " HTTP/1.1\r\nHost: " + host + ":443\r\n"
           "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n";
}

struct Web {
    FakeHost host;
    int front = -1, front_port = 0;
    int la = -1, lb = -1, pa = 0, pb = 0;
    std::shared_ptr<const session::Snapshot> snap;
    explicit Web(const std::string& b_extra = "", const std::string& l_extra = "") {
        front = listen_loopback(&front_port);
        la = listen_loopback(&pa);
        lb = listen_loopback(&pb);
        set_nonblocking(la);
        set_nonblocking(lb);
        snap = snapshot_from(http_config(pa, pb, b_extra, l_extra));
    }
    ~Web() {
        for (int fd : {front, la, lb}) ::close(fd);
    }
    int open() {
        int client = connect_loopback(front_port);
        int fd = accept_one(front);
        REQUIRE(fd >= 0);
        sockaddr_storage peer{};
        socklen_t len = sizeof peer;
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len);
        (new session::Session(host, snap, 0))->start(fd, peer);
        return client;
    }
    // Which backend took the connection: 0 (shard-1), 1 (shard-2) or -1; its fd in *fd.
    int accepted(int* fd) {
        int which = -1;
        host.run_until([&] {
            if (which >= 0) return true;  // run_until asks once more at the end
            if ((*fd = ::accept(la, nullptr, nullptr)) >= 0) which = 0;
            else if ((*fd = ::accept(lb, nullptr, nullptr)) >= 0) which = 1;
            return which >= 0;
        });
        return which;
    }
    std::string pump_read(int fd, std::size_t n, int ms = 2000) {
        std::string got;
        host.run_until([&] {
            got += read_some(fd, 1);
            return got.size() >= n;
        }, ms);
        return got;
    }
    std::string read_until(int fd, std::string_view end, int ms = 2000) {
        std::string got;
        host.run_until([&] {
            got += read_some(fd, 1);
            return got.find(end) != std::string::npos;
        }, ms);
        return got;
    }
};

int expected_backend(const std::string& key) {
    return static_cast<int>(routing::rendezvous_order(key, {"shard-1", "shard-2"})[0]);
}

}  // namespace

TEST_CASE("http door: a WebSocket upgrade goes to its room's backend and frames relay unchanged", "[http]") {
    Web w;
    int client = w.open();
    REQUIRE(write_all(client, upgrade("Room%31")));  // decoded and lower-cased: "room1"
    int b = -1;
    int which = w.accepted(&b);
    REQUIRE(which >= 0);
    CHECK(which == expected_backend("room1"));
    std::string head = w.read_until(b, "\r\n\r\n");
    CHECK(head.rfind("GET /xmpp-websocket?room=Room%31 HTTP/1.1\r\nHost: meet.example.com:443\r\n", 0) == 0);
    CHECK(head.find("X-Forwarded-For: 127.0.0.1\r\n") != std::string::npos);
    CHECK(head.find("X-Forwarded-Proto: http\r\n") != std::string::npos);
    CHECK(head.find("Connection: Upgrade\r\n") != std::string::npos);
    std::string answer = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Protocol: xmpp\r\n\r\n";
    REQUIRE(write_all(b, answer));
    CHECK(w.pump_read(client, answer.size()) == answer);
    auto* cell = w.host.stats().listener("web");
    CHECK(cell->websockets.get() == 1);
    CHECK(cell->http_responses[metrics::HttpClass::C1xx].get() == 1);
    std::string frame = "\x81\x85\x01\x02\x03\x04" + std::string("<a/>x");
    REQUIRE(write_all(client, frame));
    CHECK(w.pump_read(b, frame.size()) == frame);
    ::close(client);
    ::close(b);
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
    CHECK(cell->websockets.get() == 0);
}

TEST_CASE("http door: a room always reaches the same backend; rooms spread over both", "[http]") {
    Web w;
    std::set<int> used;
    for (int i = 0; i < 12; ++i) {
        std::string room = "r" + std::to_string(i % 6);
        int client = w.open();
        REQUIRE(write_all(client, upgrade(room)));
        int b = -1;
        int which = w.accepted(&b);
        CHECK(which == expected_backend(room));
        used.insert(which);
        REQUIRE(write_all(b, "HTTP/1.1 101 Switching Protocols\r\n\r\n"));
        CHECK(w.read_until(client, "\r\n\r\n").rfind("HTTP/1.1 101", 0) == 0);
        ::close(client);
        ::close(b);
        REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
    }
    CHECK(used.size() == 2);
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
}

std::string bosh(const std::string& room, const std::string& body, const std::string& extra = "") {
    return "POST /http-bind?room=" + room + " HTTP/1.1\r\nHost: meet.example.com\r\n" + extra +
           "Content-Type: text/xml\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Two rooms that hash to different backends: [0] on shard-1, [1] on shard-2.
std::array<std::string, 2> rooms_apart() {
    std::array<std::string, 2> r;
    for (int i = 0; r[0].empty() || r[1].empty(); ++i) {
        std::string room = "room" + std::to_string(i);
        auto& slot = r[static_cast<std::size_t>(expected_backend(room))];
        if (slot.empty()) slot = room;
    }
    return r;
}

const std::string kBody = "<body rid='1' xmlns='http://jabber.org/protocol/httpbind' to='meet.example.com'/>";

TEST_CASE("http door: a BOSH request goes out with its body and without the client's Connection", "[http]") {
    Web w;
    int client = w.open();
    std::string req = "POST /tenant/http-bind?room=abc HTTP/1.1\r\nHost: meet.example.com\r\n"
                      "Connection: keep-alive\r\nContent-Type: text/xml\r\nContent-Length: " +
                      std::to_string(kBody.size()) + "\r\n\r\n";
    REQUIRE(write_all(client, req + kBody.substr(0, 10)));
    int b = -1;
    int which = w.accepted(&b);
    CHECK(which == expected_backend("tenant/abc"));
    REQUIRE(write_all(client, kBody.substr(10)));
    std::string got = w.read_until(b, "httpbind' to='meet.example.com'/>");
    CHECK(got.find("Connection") == std::string::npos);  // hop-by-hop: the proxy's own connection
    REQUIRE(got.size() >= kBody.size());
    CHECK(got.substr(got.size() - kBody.size()) == kBody);
    std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    REQUIRE(write_all(b, answer));
    // The backend said close: the client gets the answer and its connection closes.
    CHECK(w.pump_read(client, answer.size()) == answer);
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
    CHECK(read_some(client, 200).empty());
    ::close(b);
    ::close(client);
}

TEST_CASE("http door: requests of one keep-alive connection are routed each on its own; backend connections are reused", "[http]") {
    Web w;
    auto rooms = rooms_apart();
    int client = w.open();
    std::array<int, 2> fds{-1, -1};
    auto* b1 = w.host.stats().backend("shard-1");
    // room A, room B, room A again: the third request rides shard-1's pooled connection.
    for (int round = 0; round < 3; ++round) {
        std::size_t which = round == 1 ? 1 : 0;
        std::string body = "<body rid='" + std::to_string(round + 1) + "' xmlns='http://jabber.org/protocol/httpbind'/>";
        REQUIRE(write_all(client, bosh(rooms[which], body)));
        if (round < 2) {
            int fd = -1;
            REQUIRE(w.accepted(&fd) == static_cast<int>(which));
            fds[which] = fd;
        }
        std::string got = w.read_until(fds[which], "httpbind'/>");
        CHECK(got.rfind("POST /http-bind?room=" + rooms[which] + " ", 0) == 0);
        std::string answer = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 7\r\n\r\n<body/>";
        REQUIRE(write_all(fds[which], answer));
        std::string back = w.read_until(client, "<body/>");
        CHECK(back.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
        CHECK(back.find("Connection: close") == std::string::npos);
    }
    int extra = -1;
    CHECK(w.accepted(&extra) == -1);  // no third backend connection
    CHECK(b1->reused.get() == 1);
    CHECK(w.host.idle_pool().idle() == 2);  // both backend connections wait in the pool
    auto* cell = w.host.stats().listener("web");
    CHECK(cell->http_responses[metrics::HttpClass::C2xx].get() == 3);
    CHECK(b1->http_responses[metrics::HttpClass::C2xx].get() == 2);
    CHECK(w.host.stats().backend("shard-2")->http_responses[metrics::HttpClass::C2xx].get() == 1);
    CHECK(w.host.live.size() == 1);  // the client connection waits for its next request
    ::close(client);
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
    CHECK(w.host.ends.back().reason == "client_closed");
    for (int fd : fds) ::close(fd);
}

TEST_CASE("http door: a pipelined request waits for the first one's response", "[http]") {
    Web w;
    auto rooms = rooms_apart();
    int client = w.open();
    REQUIRE(write_all(client, bosh(rooms[0], kBody) + bosh(rooms[1], kBody)));
    int fa = -1;
    REQUIRE(w.accepted(&fa) == 0);
    std::string got = w.read_until(fa, "meet.example.com'/>");
    CHECK(got.find("room=" + rooms[1]) == std::string::npos);
    int fb = -1;
    CHECK(w.accepted(&fb) == -1);  // not routed before the first response
    REQUIRE(write_all(fa, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n<body/>\r\n0\r\n\r\n"));
    CHECK(w.read_until(client, "0\r\n\r\n").find("<body/>") != std::string::npos);
    REQUIRE(w.accepted(&fb) == 1);
    CHECK(w.read_until(fb, "meet.example.com'/>").rfind("POST /http-bind?room=" + rooms[1], 0) == 0);
    REQUIRE(write_all(fb, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    CHECK(w.read_until(client, "\r\n\r\n").rfind("HTTP/1.1 200", 0) == 0);
    ::close(client);
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
    ::close(fa);
    ::close(fb);
}

TEST_CASE("http door: a pooled connection the backend closed is replaced, not counted as a failure", "[http]") {
    Web w("check = \"tcp\"\n");
    auto rooms = rooms_apart();
    int client = w.open();
    int fd = -1;
    REQUIRE(write_all(client, bosh(rooms[1], kBody)));
    REQUIRE(w.accepted(&fd) == 1);
    w.read_until(fd, "'/>");
    REQUIRE(write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    w.read_until(client, "\r\n\r\n");
    REQUIRE(w.host.run_until([&] { return w.host.idle_pool().idle() == 1; }));
    // The pool notices a close while idle; a close racing the next request is retried.
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    REQUIRE(write_all(client, bosh(rooms[1], kBody)));
    REQUIRE(w.accepted(&fd) == 1);
    w.read_until(fd, "'/>");
    REQUIRE(write_all(fd, "HTTP/1.1 204 No Content\r\n\r\n"));
    CHECK(w.read_until(client, "\r\n\r\n").rfind("HTTP/1.1 204", 0) == 0);
    CHECK(w.host.stats().backend("shard-2")->connect_failures.get() == 0);
    CHECK(w.snap->rt->states[1]->up());
    ::close(client);
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
    ::close(fd);
}

TEST_CASE("http door: Connection: close from the client closes after the response; the backend connection is kept", "[http]") {
    Web w;
    int client = w.open();
    REQUIRE(write_all(client, bosh("abc", kBody, "Connection: close\r\n")));
    int fd = -1;
    REQUIRE(w.accepted(&fd) >= 0);
    w.read_until(fd, "'/>");
    REQUIRE(write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    std::string back = w.read_until(client, "ok");
    CHECK(back.find("Connection: close\r\n") != std::string::npos);  // added for the client
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
    CHECK(w.host.idle_pool().idle() == 1);
    ::close(client);
    ::close(fd);
}

TEST_CASE("http door: a smuggling attempt in a later request is refused; an idle keep-alive connection ends quietly", "[http]") {
    Web w("", "");
    auto snap_short = snapshot_from("[proxy]\nkeepalive_timeout = \"200ms\"\n" + http_config(w.pa, w.pb).substr(8));
    w.snap = snap_short;
    int client = w.open();
    REQUIRE(write_all(client, bosh("abc", kBody)));
    int fd = -1;
    REQUIRE(w.accepted(&fd) >= 0);
    w.read_until(fd, "'/>");
    REQUIRE(write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    w.read_until(client, "\r\n\r\n");
    REQUIRE(write_all(client, "POST /http-bind?room=abc HTTP/1.1\r\nHost: meet.example.com\r\n"
                              "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
    CHECK(w.read_until(client, "\r\n\r\n").rfind("HTTP/1.1 400 ", 0) == 0);
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
    ::close(client);
    // Idle: no next request within keepalive_timeout.
    client = w.open();
    REQUIRE(write_all(client, bosh("abc", kBody)));
    w.read_until(fd, "'/>");  // the pooled connection serves it
    REQUIRE(write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    w.read_until(client, "\r\n\r\n");
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }, 2000));
    CHECK(w.host.ends.back().reason == "idle");
    CHECK(read_some(client, 100).empty());
    ::close(client);
    ::close(fd);
}

TEST_CASE("http door: refusals are HTTP responses", "[http]") {
    Web w;
    struct Case {
        std::string in;
        std::string status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", "HTTP/1.1 400 "},
        {upgrade("x", "elsewhere.example"), "HTTP/1.1 404 "},
        {"POST /http-bind?room=a HTTP/1.1\r\nHost: meet.example.com\r\nContent-Length: 3\r\n"
         "Transfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 400 "},
        {"GET /xmpp-websocket?room=a HTTP/1.1\r\nHost: meet.example.com\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n", "HTTP/1.1 400 "},
        {"GET /x HTTP/1.1\r\nHost: meet.example.com\r\nX-Big: " + std::string(20000, 'a'), "HTTP/1.1 431 "},
        {"GET /xmpp-websocket HTTP/1.1\r\nHost: meet.example.com\r\n", "HTTP/1.1 408 "},  // never ends
    };
    for (const auto& c : cases) {
        INFO(c.in.substr(0, 60));
        int client = w.open();
        REQUIRE(write_all(client, c.in));
        std::string got = w.read_until(client, "\r\n\r\n", 1500);
        CHECK(got.rfind(c.status, 0) == 0);
        ::close(client);
        REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
    }
    auto* cell = w.host.stats().listener("web");
    CHECK(cell->http_responses[metrics::HttpClass::C4xx].get() == 6);
    CHECK(cell->websockets.get() == 0);
}

TEST_CASE("http door: every candidate down is a 502", "[http]") {
    Web w;
    ::close(w.la);
    ::close(w.lb);
    w.la = w.lb = -1;
    int client = w.open();
    REQUIRE(write_all(client, upgrade("r")));
    std::string got = w.read_until(client, "\r\n\r\n");
    CHECK(got.rfind("HTTP/1.1 502 ", 0) == 0);
    CHECK(w.host.stats().listener("web")->http_responses[metrics::HttpClass::C5xx].get() == 1);
    ::close(client);
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
}

TEST_CASE("http door: ?vnode= goes to that visitor node's backend only; others never go there", "[http]") {
    Web w("vnode = \"v1\"\n");  // shard-2 is visitor node v1
    for (int i = 0; i < 6; ++i) {
        std::string room = "r" + std::to_string(i);
        for (bool visitor : {false, true}) {
            int client = w.open();
            std::string req = upgrade(room);
            if (visitor) req.replace(req.find("room="), 5, "vnode=V1&room=");
            REQUIRE(write_all(client, req));
            int b = -1;
            CHECK(w.accepted(&b) == (visitor ? 1 : 0));
            REQUIRE(write_all(b, "HTTP/1.1 101 Switching Protocols\r\n\r\n"));
            CHECK(w.read_until(client, "\r\n\r\n").rfind("HTTP/1.1 101", 0) == 0);
            ::close(client);
            ::close(b);
            REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
        }
    }
    int client = w.open();
    std::string req = upgrade("r");
    req.replace(req.find("room="), 5, "vnode=v9&room=");
    REQUIRE(write_all(client, req));
    CHECK(w.read_until(client, "\r\n\r\n").rfind("HTTP/1.1 404 ", 0) == 0);
    ::close(client);
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
}

TEST_CASE("http door: shard_header names the backend's shard in its first answer", "[http]") {
    Web w("shard = \"shard-b\"\n", "shard_header = \"X-Jitsi-Shard\"\n");  // shard-2 is "shard-b"
    std::set<std::string> seen;
    for (int i = 0; i < 6; ++i) {
        std::string room = "r" + std::to_string(i);
        int client = w.open();
        REQUIRE(write_all(client, upgrade(room)));
        int b = -1;
        int which = w.accepted(&b);
        REQUIRE(which >= 0);
        REQUIRE(write_all(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n<x/>"));
        std::string got = w.read_until(client, "<x/>");
        std::string want = which == 0 ? "shard-1" : "shard-b";
        CHECK(got == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-Jitsi-Shard: " + want +
                         "\r\n\r\n<x/>");
        seen.insert(want);
        ::close(client);
        ::close(b);
        REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
    }
    CHECK(seen.size() == 2);
}

TEST_CASE("http door: BOSH without a room: the creation's sid is learned; its requests go to the session's owner", "[http][bosh]") {
    Web w;
    auto& sids = *w.snap->rt->bosh;
    int domain_pick = expected_backend("meet.example.com");
    std::string names[2] = {"shard-1", "shard-2"};
    // Creation (no room, no sid): routed by the body's `to` (hashed as the domain).
    int client = w.open();
    std::string create = "<body rid='10' to='meet.example.com' wait='60' hold='1' xmlns='http://jabber.org/protocol/httpbind'/>";
    std::string req = "POST /http-bind HTTP/1.1\r\nHost: meet.example.com\r\nContent-Length: " +
                      std::to_string(create.size()) + "\r\n\r\n";
    REQUIRE(write_all(client, req + create.substr(0, 5)));  // the root arrives later: routing waits
    int fd = -1;
    w.host.run_until([] { return false; }, 100);  // within header_timeout (300 ms)
    CHECK(::accept(w.la, nullptr, nullptr) < 0);
    CHECK(::accept(w.lb, nullptr, nullptr) < 0);
    REQUIRE(write_all(client, create.substr(5)));
    REQUIRE(w.accepted(&fd) == domain_pick);
    w.read_until(fd, "httpbind'/>");
    std::string answer = "<body sid='Sid-42' wait='60' xmlns='http://jabber.org/protocol/httpbind'/>";
    REQUIRE(write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(answer.size()) + "\r\n\r\n" + answer));
    w.read_until(client, "httpbind'/>");
    CHECK(sids.owner("Sid-42") == names[domain_pick]);
    CHECK(sids.per_backend()[names[domain_pick]] == 1);
    ::close(client);
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
    ::close(fd);
    // A session the other backend owns (as learned by another worker or an earlier connection):
    // a request with its sid and no room goes there, not to the domain's backend.
    sids.learned("Sid-7", names[1 - domain_pick]);
    client = w.open();
    REQUIRE(write_all(client, "POST /http-bind HTTP/1.1\r\nHost: meet.example.com\r\nContent-Length: 72\r\n\r\n"
                              "<body rid='11' sid='Sid-7' xmlns='http://jabber.org/protocol/httpbind'/>"));
    REQUIRE(w.accepted(&fd) == 1 - domain_pick);
    REQUIRE(write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    w.read_until(client, "\r\n\r\n");
    // An unknown sid falls back to the domain.
    ::close(client);
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
    ::close(fd);
    client = w.open();
    REQUIRE(write_all(client, "POST /http-bind HTTP/1.1\r\nHost: meet.example.com\r\nContent-Length: 72\r\n\r\n"
                              "<body rid='11' sid='Sid-0' xmlns='http://jabber.org/protocol/httpbind'/>"));
    REQUIRE(w.accepted(&fd) == domain_pick);
    REQUIRE(write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    w.read_until(client, "\r\n\r\n");
    ::close(client);
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
    ::close(fd);
}

TEST_CASE("http door: draining, a keep-alive connection ends with its current response", "[http]") {
    Web w;
    int client = w.open();
    REQUIRE(write_all(client, bosh("abc", kBody)));
    int fd = -1;
    REQUIRE(w.accepted(&fd) >= 0);
    w.read_until(fd, "'/>");
    w.host.draining_now = true;
    REQUIRE(write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    CHECK(w.read_until(client, "ok").find("Connection: close\r\n") != std::string::npos);
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
    CHECK(w.host.ends.back().reason == "client_closed");
    ::close(client);
    ::close(fd);
}

TEST_CASE("http door: held BOSH polls do not hold admission slots; continuations bypass admission", "[http][bosh]") {
    Web w("max_connecting = 1\nmax_new_per_second = 1\n");  // on shard-2 only
    auto rooms = rooms_apart();
    std::vector<int> clients, fds;
    // Three session creations: each is sent (its slot released at once), then held by the backend.
    for (int i = 0; i < 3; ++i) {
        int c = w.open();
        REQUIRE(write_all(c, bosh(rooms[1], kBody)));
        int fd = -1;
        if (i == 0) {
            REQUIRE(w.accepted(&fd) == 1);
        } else {
            // max_new_per_second = 1: the second and third wait for rate tokens, then go.
            REQUIRE(w.host.run_until([&] { return fd >= 0 || (fd = ::accept(w.lb, nullptr, nullptr)) >= 0; }, 3000));
        }
        clients.push_back(c);
        fds.push_back(fd);
    }
    // Ten continuations (with a sid) at once: no admission, all reach the backend now.
    std::string cont = "<body rid='2' sid='abc' xmlns='http://jabber.org/protocol/httpbind'/>";
    for (int i = 0; i < 10; ++i) {
        int c = w.open();
        REQUIRE(write_all(c, bosh(rooms[1], cont)));
        clients.push_back(c);
    }
    int got = 0;
    w.host.run_until([&] {
        int fd;
        while ((fd = ::accept(w.lb, nullptr, nullptr)) >= 0) {
            fds.push_back(fd);
            ++got;
        }
        return got == 10;
    }, 500);
    CHECK(got == 10);
    CHECK(w.snap->rt->states[1]->connecting() == 0);
    for (int c : clients) ::close(c);
    for (int fd : fds) ::close(fd);
    REQUIRE(w.host.run_until([&] { return w.host.live.empty(); }));
}
