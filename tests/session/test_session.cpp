// Session over real loopback sockets with a fake host: relay and exact replay, failover replay
// to the next candidate, the opening timeout, half-close while waiting for the backend, the
// refusal linger, a reset in each waiting state.
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "fake_host.hpp"
#include "util/log.hpp"

using namespace xs;
using namespace xs::test;
using session::State;

namespace {

const std::string kHeader =
    "<?xml version='1.0'?><stream:stream to='meet.example.com' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

std::string config_for(int port_a, int port_b, const std::string& extra = "") {
    return "[proxy]\nheader_timeout = \"300ms\"\nconnect_timeout = \"1s\"\nbackend_timeout = \"400ms\"\n"
           "close_linger = \"300ms\"\n" + extra +
           "[[listener]]\nname = \"c2s\"\nbind = \"127.0.0.1:0\"\n"
           "[[backend]]\nname = \"a\"\naddress = \"127.0.0.1:" + std::to_string(port_a) + "\"\n"
           "[[backend]]\nname = \"b\"\naddress = \"127.0.0.1:" + std::to_string(port_b) + "\"\n"
           "[[route]]\ndomains = [\"meet.example.com\"]\nbackends = [\"a\", \"b\"]\n";
}

// One session on the host, started on a fresh loopback connection; returns the client's fd.
struct Harness {
    FakeHost host;
    int front = -1;  // where the "accepted" connection comes from
    int front_port = 0;
    Harness() { front = listen_loopback(&front_port); }
    ~Harness() { ::close(front); }

    int open(std::shared_ptr<const session::Snapshot> snap) {
        int client = connect_loopback(front_port);
        int fd = accept_one(front);
        REQUIRE(fd >= 0);
        sockaddr_storage peer{};
        socklen_t len = sizeof peer;
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len);
        auto* s = new session::Session(host, std::move(snap), 0);
        s->start(fd, peer);
        return client;
    }
    session::Session* one() { return host.live.empty() ? nullptr : *host.live.begin(); }
    State state() { return one() ? one()->state() : State::Closed; }
    bool in(State s) { return host.run_until([&] { return state() == s; }); }
    bool ended() { return host.run_until([&] { return host.live.empty(); }); }
    int accept_backend(int lfd) {
        set_nonblocking(lfd);
        int fd = -1;
        host.run_until([&] {
            if (fd < 0) fd = ::accept(lfd, nullptr, nullptr);
            return fd >= 0;
        });
        return fd;
    }
    // Runs the loop while reading `fd` until `n` bytes came or time is up.
    std::string pump_read(int fd, std::size_t n, int ms = 2000) {
        std::string got;
        host.run_until([&] {
            got += read_some(fd, 1);
            return got.size() >= n;
        }, ms);
        return got;
    }
};

}  // namespace

TEST_CASE("a session replays the client's exact bytes and relays both ways", "[session]") {
    int pa = 0, pb = 0;
    int la = listen_loopback(&pa), lb = listen_loopback(&pb);
    Harness h;
    if (getenv("XS_DEBUG")) xs::log::set_level(xs::log::Level::Debug);
    int client = h.open(snapshot_from(config_for(pa, pb)));
    std::string first = kHeader + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
    REQUIRE(write_all(client, first));
    int backend = h.accept_backend(la);
    REQUIRE(backend >= 0);
    CHECK(h.pump_read(backend, first.size()) == first);
    CHECK(h.state() == State::AwaitingBackend);
    REQUIRE(write_all(backend, "<stream:stream>"));
    CHECK(h.pump_read(client, 15) == "<stream:stream>");
    CHECK(h.state() == State::Relaying);
    REQUIRE(write_all(client, "<presence/>"));
    CHECK(h.pump_read(backend, 11) == "<presence/>");
    ::close(client);  // a half-close for the backend, which then closes too
    char c;
    REQUIRE(h.host.run_until([&] { return ::recv(backend, &c, 1, MSG_DONTWAIT) == 0; }));
    CHECK(h.state() == State::Closing);
    ::close(backend);
    REQUIRE(h.ended());
    REQUIRE(h.host.ends.size() == 1);
    CHECK(h.host.ends[0].reason == "client_closed");
    CHECK(h.host.ends[0].backend == "a");
    CHECK(h.host.ends[0].to_backend == first.size() + 11);
    CHECK_FALSE(h.host.ends[0].error);
    ::close(la);
    ::close(lb);
}

TEST_CASE("failover replays the exact bytes to the next candidate", "[session]") {
    int pa = 0, pb = 0;
    int la = listen_loopback(&pa), lb = listen_loopback(&pb);
    Harness h;
    int client = h.open(snapshot_from(config_for(pa, pb)));
    std::string first = kHeader;
    REQUIRE(write_all(client, first.substr(0, 40)));
    REQUIRE(h.host.run_until([&] { return false; }, 30) == false);
    REQUIRE(write_all(client, first.substr(40)));
    int a = h.accept_backend(la);
    REQUIRE(a >= 0);
    CHECK(h.pump_read(a, first.size()) == first);
    // More client bytes while waiting: kept for the replay too.
    REQUIRE(write_all(client, "<x/>"));
    CHECK(h.pump_read(a, 4) == "<x/>");
    ::close(a);  // closes before answering: the next candidate gets everything again
    int b = h.accept_backend(lb);
    REQUIRE(b >= 0);
    CHECK(h.pump_read(b, first.size() + 4) == first + "<x/>");
    REQUIRE(write_all(b, "<ok/>"));
    CHECK(h.pump_read(client, 5) == "<ok/>");
    ::close(client);
    REQUIRE(h.ended());
    CHECK(h.host.ends[0].backend == "b");
    CHECK(h.host.stats().backend("a")->connect_failures.get() == 1);
    ::close(b);
    ::close(la);
    ::close(lb);
}

TEST_CASE("every candidate failing ends in remote-connection-failed", "[session]") {
    int pa = 0, pb = 0;
    int la = listen_loopback(&pa), lb = listen_loopback(&pb);
    ::close(la);  // refused connections
    ::close(lb);
    Harness h;
    int client = h.open(snapshot_from(config_for(pa, pb)));
    REQUIRE(write_all(client, kHeader));
    std::string got = h.pump_read(client, 1);
    got += h.pump_read(client, 100000, 300);
    CHECK(got.find("<remote-connection-failed") != std::string::npos);
    ::close(client);
    REQUIRE(h.ended());
    CHECK(h.host.ends[0].reason == "backend_connect_failed");
    CHECK(h.host.ends[0].error);
}

TEST_CASE("the opening timeout refuses with connection-timeout", "[session]") {
    Harness h;
    int client = h.open(snapshot_from(config_for(1, 2)));
    REQUIRE(write_all(client, "<?xml version='1.0'?>"));
    CHECK(h.in(State::Refusing));
    std::string got = h.pump_read(client, 1, 500);
    CHECK(got.find("<connection-timeout") != std::string::npos);
    // The refusal lingers (reading and dropping) until the client closes or close_linger.
    CHECK(h.state() == State::Refusing);
    ::close(client);
    REQUIRE(h.ended());
    CHECK(h.host.ends[0].condition == "connection-timeout");
}

TEST_CASE("a refusal lingers until close_linger when the client stays", "[session]") {
    Harness h;
    int client = h.open(snapshot_from(config_for(1, 2)));
    std::string other = kHeader;
    other.replace(other.find("meet.example.com"), 16, "nowhere.example");
    REQUIRE(write_all(client, other));
    CHECK(h.in(State::Refusing));
    CHECK(h.pump_read(client, 1).find("<host-unknown") != std::string::npos);
    REQUIRE(write_all(client, "<more/>"));  // dropped, not an error
    REQUIRE(h.ended());                     // close_linger (300 ms)
    CHECK(h.host.ends[0].condition == "host-unknown");
    ::close(client);
}

TEST_CASE("a half-close while awaiting the backend is passed on once it answers", "[session]") {
    int pa = 0, pb = 0;
    int la = listen_loopback(&pa), lb = listen_loopback(&pb);
    Harness h;
    int client = h.open(snapshot_from(config_for(pa, pb)));
    REQUIRE(write_all(client, kHeader));
    int a = h.accept_backend(la);
    REQUIRE(a >= 0);
    CHECK(h.pump_read(a, kHeader.size()) == kHeader);
    ::shutdown(client, SHUT_WR);
    REQUIRE(h.host.run_until([&] { return false; }, 50) == false);
    CHECK(h.state() == State::AwaitingBackend);
    REQUIRE(write_all(a, "</stream:stream>"));
    CHECK(h.pump_read(client, 16) == "</stream:stream>");
    // The backend now sees the client's FIN.
    char c;
    REQUIRE(h.host.run_until([&] { return ::recv(a, &c, 1, MSG_DONTWAIT) == 0; }));
    ::close(a);
    REQUIRE(h.ended());
    ::close(client);
    ::close(la);
    ::close(lb);
}

TEST_CASE("a reset in each waiting state ends the session at once", "[session]") {
    int pa = 0, pb = 0;
    int la = listen_loopback(&pa), lb = listen_loopback(&pb);
    auto reset = [](int fd) {
        linger l{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(fd);
    };
    SECTION("opening") {
        Harness h;
        int client = h.open(snapshot_from(config_for(pa, pb)));
        REQUIRE(write_all(client, "<?xml "));
        reset(client);
        REQUIRE(h.host.run_until([&] { return h.host.live.empty(); }, 200));  // before header_timeout
        CHECK(h.host.ends[0].condition.empty());  // not refused: ended by the reset
    }
    SECTION("awaiting the backend") {
        Harness h;
        int client = h.open(snapshot_from(config_for(pa, pb)));
        REQUIRE(write_all(client, kHeader));
        int a = h.accept_backend(la);
        REQUIRE(h.in(State::AwaitingBackend));
        reset(client);
        REQUIRE(h.host.run_until([&] { return h.host.live.empty(); }, 200));
        CHECK(h.host.ends[0].reason == "client_error");
        ::close(a);
    }
    SECTION("relaying, backend side") {
        Harness h;
        int client = h.open(snapshot_from(config_for(pa, pb)));
        REQUIRE(write_all(client, kHeader));
        int a = h.accept_backend(la);
        REQUIRE(write_all(a, "<s/>"));
        REQUIRE(h.in(State::Relaying));
        reset(a);
        REQUIRE(h.host.run_until([&] { return h.host.live.empty(); }, 500));
        CHECK(h.host.ends[0].reason == "backend_error");
        ::close(client);
    }
    ::close(la);
    ::close(lb);
}
